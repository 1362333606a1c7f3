"""Messages for one person arriving on several workers at once end in one profile (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Event, Profile, ProfileStatus, Source
from cdp.services.ingest import ingest_batch
from identity.models import Identifier


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_for_one_person_end_in_one_profile():
    seed_traits()
    source = Source.objects.create(name="app", channel="app")
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:t", role=Role.SOURCE, source_id=source.pk)
    workers = 8
    # Every worker sends the same person's e-mail and phone with its own cookie and device, in a
    # different order (odd workers start with the phone). Without locks, two workers would both
    # create a profile for the e-mail (or fail on the identifier's unique constraint).
    batches = []
    for i in range(workers):
        ts = "2026-01-01T00:00:00Z"
        ids = [
            {"email": "same.person@example.com", "cookie_id": f"ck-{i}"},
            {"cookie_id": f"ck-{i}", "device_id": f"dev-{i}"},
            {"phone": "13800000000", "device_id": f"dev-{i}"},
            {"email": "same.person@example.com", "phone": "13800000000"},
        ]
        if i % 2:
            ids.reverse()
        batches.append(
            [
                {"message_id": f"w{i}-{j}", "type": "identify", "timestamp": ts, "identifiers": x}
                for j, x in enumerate(ids)
            ]
        )
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(batch):
        try:
            barrier.wait()
            result = ingest_batch(actor=actor, messages=batch)
            assert result.counts == {"accepted": len(batch)}, result.counts
        except BaseException as exc:  # report in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    active = Profile.objects.filter(status=ProfileStatus.ACTIVE)
    assert active.count() == 1
    survivor = active.get()
    assert Identifier.objects.exclude(profile=survivor).count() == 0
    assert Event.objects.exclude(profile=survivor).count() == 0
    assert Event.objects.count() == workers * 4
    assert not Profile.objects.filter(status=ProfileStatus.MERGED).exclude(merged_into=survivor).exists()
