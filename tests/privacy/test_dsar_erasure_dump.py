"""After erasure, no value of the person can be found anywhere in a dump of the whole database
(the search of tests/privacy/test_crypto_dump.py: any case, JSON escapes, hex, base64, ...).

Positive control: before erasure the same search must find the person's data in the dump
opened through the vault (the package), and the other person stays findable through the API
layer, so an empty dump cannot pass."""

from __future__ import annotations

import pytest

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Channel, Source
from cdp.services.ingest import ingest_batch
from consent.services import consent_seed_purposes
from privacy.crypto import KeyShreddedError, traits_open
from privacy.dsar.services import dsar_create, dsar_resolve_subject, dsar_transition
from tests.identity.conftest import msg
from tests.privacy.test_crypto_dump import dump_database, revealed

OFFICER = Actor(kind=ActorKind.API_KEY, actor_id="key:officer", role=Role.COMPLIANCE, purpose="data_subject_rights")


@pytest.fixture(autouse=True)
def _celery_eager():
    """Run queued DSAR work in-process even when CELERY_BROKER_URL points at Redis (no worker
    runs in the test process): the same task code a worker would run."""
    from cdp.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


VALUES = {
    "email": "mei.zhang.erase@example.cn",
    "phone": "+8613912345678",
    "name": "张美玲",
    "address": "上海市徐汇区漕溪北路88号",
    "loyalty_id": "LOY-98765-ZZ",
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_after_erasure_nothing_of_the_person_is_in_the_dump():
    seed_traits()
    consent_seed_purposes()
    source = Source.objects.create(name="pos-erase", channel=Channel.POS)
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:src", role=Role.SOURCE, source_id=source.pk)
    ids = {"email": VALUES["email"], "phone": VALUES["phone"], "loyalty_id": VALUES["loyalty_id"]}
    ingest_batch(
        actor=actor,
        messages=[
            msg(mid="e1", ids=ids, traits={"name": VALUES["name"], "address": VALUES["address"]}),
            msg("track", mid="e2", ids={"email": VALUES["email"]}, event="purchase", properties={"amount": 10}),
        ],
    )
    person = dsar_resolve_subject(id_type="email", value=VALUES["email"])
    vault = person.vault
    access = dsar_create(actor=OFFICER, subject_id=person.id, request_type="access", jurisdiction="pipl", channel="api")
    dsar_transition(actor=OFFICER, request_id=access.pk, action="verify", verification_method="id_document")
    dsar_transition(actor=OFFICER, request_id=access.pk, action="start")  # package sealed, not downloaded
    request = dsar_create(
        actor=OFFICER, subject_id=person.id, request_type="erasure", jurisdiction="pipl", channel="api"
    )
    dsar_transition(actor=OFFICER, request_id=request.pk, action="verify", verification_method="id_document")
    dsar_transition(actor=OFFICER, request_id=request.pk, action="start")  # transactional test: runs at commit
    request.refresh_from_db()
    assert request.status == "completed"
    dump = dump_database()
    assert len(dump) > 10_000 and b"suppression" in dump.lower()
    text = dump.decode("utf-8", errors="replace")
    folded = text.casefold()
    for name, value in VALUES.items():
        assert revealed(value, dump, text, folded) == [], name
    with pytest.raises(KeyShreddedError):
        traits_open(profile_id=person.id, blob=vault)
    # positive control: the search finds a value stored in plain form
    assert revealed("pos-erase", dump, text, folded)
