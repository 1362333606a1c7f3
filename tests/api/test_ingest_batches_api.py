"""Queued ingestion: POST /api/v1/ingest/batches answers 202, a worker ingests, the source polls.

The messages are sealed at rest while queued (a dump of the database shows none of them), the
broker carries only the batch id, and the worker shreds the batch's key as it ingests.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Event, IngestBatch, Profile, Source
from cdp.services.ingest_queue import (
    PAYLOAD_FIELD,
    IngestBatchFailed,
    ingest_enqueue,
    ingest_queue_maintenance,
    ingest_run_queued,
)
from privacy.audit.models import AuditEntry
from privacy.crypto import KeyShreddedError, open_sealed
from tests.api.test_ingest_api import BAD_REQUESTS, bad_envelope, message
from tests.privacy.test_crypto_dump import dump_database, revealed
from tests.workers import celery_worker, worker_output

URL = "/api/v1/ingest/batches"


@pytest.fixture
def eager():
    """Run the worker's task in-process even when CELERY_BROKER_URL names a broker: the same code."""
    from cdp.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def source_client(make_client):
    seed_traits()
    return make_client("source", source="crm-sync")


def staged(source: Source, messages: list, **fields) -> IngestBatch:
    """A queued batch as ingest_enqueue stores it, without handing it to a worker."""
    from privacy.crypto import seal

    batch = IngestBatch.objects.create(source=source, received=len(messages), requested_by="key:crm", **fields)
    batch.payload = seal(subject_id=batch.id, field=PAYLOAD_FIELD, value=json.dumps(messages))
    batch.save()
    return batch


def opened(batch: IngestBatch) -> list:
    return json.loads(open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=bytes(batch.payload)))


def source_actor(source: Source) -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:crm", role=Role.SOURCE, source_id=source.pk)


@pytest.mark.django_db
def test_a_queued_batch_is_ingested_and_polled(source_client, eager, django_capture_on_commit_callbacks):
    body = {"messages": [message("q1"), message("q2", identifiers={"email": "nope"}), message("q1")]}
    with django_capture_on_commit_callbacks(execute=True):
        response = source_client.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert response["Location"] == queued["status_url"] == f"{URL}/{queued['batch_id']}"
    assert queued["received"] == 3
    polled = source_client.get(queued["status_url"])
    assert polled.status_code == 200
    data = polled.json()
    assert data["status"] == "done" and data["finished_at"]
    assert [r["status"] for r in data["results"]] == ["accepted", "rejected", "duplicate"]
    assert data["results"][1]["code"] == "invalid_email"
    assert data["counts"] == {"accepted": 1, "rejected": 1, "duplicate": 1}
    assert Event.objects.count() == 1 and Profile.objects.count() == 1
    assert "li.na" not in polled.content.decode()
    # Audited as the source key, under the batch's id; the acceptance too.
    batch = IngestBatch.objects.get()
    assert AuditEntry.objects.get(action="ingest.batch").details["batch"] == batch.id.hex
    assert AuditEntry.objects.get(action="ingest.queued").object_id == str(batch.id)
    # The raw batch is gone: payload dropped, its key shredded.
    assert batch.payload is None


@pytest.mark.django_db
def test_only_the_sending_source_sees_its_batch(source_client, make_client, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        url = source_client.post(URL, {"messages": [message()]}, format="json").json()["status_url"]
    other = make_client("source", source="pos-store")
    for client, path in ((other, url), (source_client, f"{URL}/{uuid.uuid4()}"), (source_client, f"{URL}/nope")):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    steward = make_client("steward")
    assert steward.get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "status", "code"), BAD_REQUESTS)
def test_a_bad_envelope_is_refused_and_queues_nothing(
    case, status, code, source_client, make_client, settings, anon_client
):
    client, body = bad_envelope(case, source_client, settings, make_client, anon_client)
    response = client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not IngestBatch.objects.exists() and not AuditEntry.objects.filter(action="ingest.queued").exists()


@pytest.mark.django_db
def test_the_broker_gets_the_batch_id_only(source_client, django_capture_on_commit_callbacks):
    """What a worker receives: the task's arguments, recorded by Celery's own publish signal."""
    from celery.signals import before_task_publish

    from cdp.celery import app

    if app.conf.task_always_eager:
        pytest.skip("no broker configured: eager mode publishes nothing")
    published = []

    def record(sender=None, body=None, **kwargs):
        published.append((sender, body))

    before_task_publish.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = source_client.post(URL, {"messages": [message()]}, format="json")
    finally:
        before_task_publish.disconnect(record)
        app.control.purge()  # no worker runs in the test process; leave no message behind
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert [s for s, _ in published] == ["cdp.ingest_run_queued"]
    args, kwargs, _ = published[0][1]
    assert list(args) == [response.json()["batch_id"]] and kwargs == {}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_queued_batch_is_sealed_at_rest_and_shredded_once_ingested():
    seed_traits()
    source = Source.objects.create(name="crm-dump", channel="crm")
    values = {"email": "wang.fang.queue@example.cn", "name": "王芳芳", "phone": "+8613987654321"}
    messages = [
        message("d1", identifiers={"email": values["email"], "phone": values["phone"]}, traits={"name": values["name"]})
    ]
    batch = ingest_enqueue(actor=source_actor(source), messages=messages)  # transactional test: on_commit ran
    batch.refresh_from_db()
    if batch.status == IngestBatch.Status.QUEUED:  # a broker is configured and no worker runs here
        from cdp.celery import app

        app.control.purge()
    else:  # embedded mode ran it at commit: queue a second one without running it
        batch = staged(source, messages)
    # Positive control: the stored payload opens to the messages.
    assert opened(batch) == messages
    dump = dump_database()
    text = dump.decode("utf-8", errors="replace")
    assert len(dump) > 10_000 and b"ingestbatch" in dump.lower()
    for name, value in values.items():
        assert revealed(value, dump, text, text.casefold()) == [], name
    sealed = bytes(batch.payload)
    ingest_run_queued(batch_id=batch.id)
    batch.refresh_from_db()
    assert batch.status == IngestBatch.Status.DONE and batch.payload is None
    with pytest.raises(KeyShreddedError):
        open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=sealed)
    assert Event.objects.filter(message_id="d1").exists()


@pytest.mark.django_db
def test_a_failing_batch_is_retried_then_failed_and_expired(settings, monkeypatch):
    seed_traits()
    source = Source.objects.create(name="crm-fail", channel="crm")
    settings.CDP_INGEST_MAX_ATTEMPTS = 2
    batch = staged(source, [message("f1")])
    import cdp.services.ingest_queue as queue

    def broken(**kwargs):
        raise RuntimeError("li.na@example.com broke it")  # a message that quotes data

    monkeypatch.setattr(queue, "ingest_batch", broken)
    with pytest.raises(IngestBatchFailed) as raised:
        ingest_run_queued(batch_id=batch.id)
    assert "li.na" not in str(raised.value) and "RuntimeError" in str(raised.value)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (IngestBatch.Status.QUEUED, 1)
    with pytest.raises(IngestBatchFailed):
        ingest_run_queued(batch_id=batch.id)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts, batch.error) == (IngestBatch.Status.FAILED, 2, "internal_error")
    failures = AuditEntry.objects.filter(action="ingest.batch", outcome="error", object_id=str(batch.id))
    assert [e.details["attempt"] for e in failures.order_by("seq")] == [1, 2]
    assert all("li.na" not in json.dumps(e.details) for e in failures)
    assert batch.payload is not None  # kept (sealed) for the operator until retention
    sealed = bytes(batch.payload)
    monkeypatch.undo()
    assert ingest_run_queued(batch_id=batch.id).status == IngestBatch.Status.FAILED  # left alone
    # Retention: finished longer ago than CDP_INGEST_BATCH_RETENTION_DAYS, the batch goes with its key.
    IngestBatch.objects.filter(id=batch.id).update(finished_at=timezone.now() - timedelta(days=30))
    assert ingest_queue_maintenance() == {"requeued": 0, "abandoned": 0, "expired": 1}
    assert not IngestBatch.objects.exists()
    with pytest.raises(KeyShreddedError):
        open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=sealed)


@pytest.mark.django_db
def test_a_batch_whose_workers_die_uses_up_its_attempts(settings):
    """A worker killed mid-batch raises nothing; its claimed attempt still counts."""
    from cdp.services.ingest_queue import _claim

    seed_traits()
    settings.CDP_INGEST_MAX_ATTEMPTS = 2
    batch = staged(Source.objects.create(name="crm-oom", channel="crm"), [message("k1")])
    assert _claim(batch.id) is not None and _claim(batch.id) is not None  # two workers died
    assert ingest_run_queued(batch_id=batch.id).status == IngestBatch.Status.FAILED
    batch.refresh_from_db()
    assert (batch.error, batch.attempts) == ("too_many_attempts", 2)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_batch_nobody_ingests_is_abandoned_after_retention():
    seed_traits()
    batch = staged(Source.objects.create(name="crm-nobody", channel="crm"), [message("n1")])
    sealed = bytes(batch.payload)
    IngestBatch.objects.filter(id=batch.id).update(queued_at=timezone.now() - timedelta(days=30))
    assert ingest_queue_maintenance() == {"requeued": 0, "abandoned": 1, "expired": 0}
    batch.refresh_from_db()
    assert (batch.status, batch.error, batch.payload) == (IngestBatch.Status.FAILED, "expired", None)
    with pytest.raises(KeyShreddedError):
        open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=sealed)


@pytest.mark.django_db
def test_maintenance_queues_a_stalled_batch_again(eager):
    seed_traits()
    batch = staged(Source.objects.create(name="crm-stall", channel="crm"), [message("s1")])
    assert ingest_queue_maintenance()["requeued"] == 0  # too young to be stalled
    IngestBatch.objects.filter(id=batch.id).update(queued_at=timezone.now() - timedelta(hours=1))
    assert ingest_queue_maintenance()["requeued"] == 1  # eager: the worker's task ran just now
    batch.refresh_from_db()
    assert batch.status == IngestBatch.Status.DONE and Event.objects.filter(message_id="s1").exists()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_ingests_a_queued_batch_through_the_broker(source_client):
    """The whole path: the API queues, Redis carries the id, a worker process started here
    opens the sealed batch from the (test) database, ingests it and shreds the key."""
    import time

    from django.db import connection

    from cdp.celery import app

    if app.conf.task_always_eager or not str(app.conf.broker_url).startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL pointing at Redis")
    app.control.purge()  # only this test's message on the queue
    response = source_client.post(URL, {"messages": [message("w1"), message("w2", type="teleport")]}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    conf = connection.settings_dict
    from urllib.parse import quote

    auth = quote(conf["USER"] or "") + (f":{quote(conf['PASSWORD'])}" if conf.get("PASSWORD") else "")
    host = f"{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}"
    database_url = f"postgres://{auth}@{host}/{conf['NAME']}"  # the test database, for the worker
    with celery_worker({"DATABASE_URL": database_url}) as worker:
        deadline = time.monotonic() + 60
        data = {}
        while time.monotonic() < deadline:
            data = source_client.get(response["Location"]).json()
            if data["status"] != "queued":
                break
            time.sleep(0.5)
        if data.get("status") != "done":
            pytest.fail(f"batch {data.get('status')}; worker output:\n" + worker_output(worker))
    assert [r["status"] for r in data["results"]] == ["accepted", "rejected"]
    assert Event.objects.filter(message_id="w1").exists()
    batch = IngestBatch.objects.get()
    assert batch.payload is None
    from privacy.crypto.models import SubjectKey

    assert SubjectKey.objects.get(subject_id=batch.id).shredded_at is not None


@pytest.mark.django_db
def test_text_utf8_cannot_encode_is_staged_and_then_rejected_alone(
    source_client, eager, django_capture_on_commit_callbacks
):
    good = json.dumps(message("ok"))
    bad = json.dumps(message("bad")).replace('"\\u674e\\u5a1c"', '"\\ud800"')
    with django_capture_on_commit_callbacks(execute=True):
        response = source_client.generic(
            "POST", URL, f'{{"messages": [{bad}, {good}]}}', content_type="application/json"
        )
    assert response.status_code == 202, response.content
    results = source_client.get(response["Location"]).json()["results"]
    assert [(r["status"], r.get("code")) for r in results] == [("rejected", "invalid_text"), ("accepted", None)]
