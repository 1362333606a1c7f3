"""Queued ingestion: accept a batch now (202), ingest it in a worker, let the source poll.

Why a sealed staging copy: the messages carry personal data and DESIGN invariant 1 forbids
plaintext personal data at rest or in the broker. So the batch is sealed under its own id as
the subject before it is stored, the Celery task carries only that id, and the worker shreds
the batch's data key in the same transaction that ingests the messages. After that, nothing of
the raw batch is readable anywhere, even in a backup taken while it was queued.

Ingestion itself is the synchronous path's (`ingest_batch`): same validation, resolution,
idempotency by (source, message_id) and audit; the batch's id is the audit entry's `batch`.
A worker that dies mid-batch rolls the whole transaction back, so the batch is still queued;
the maintenance task hands batches queued too long to the broker again, and a batch that
fails CDP_INGEST_MAX_ATTEMPTS times is marked failed (its sealed payload kept until the
retention job shreds it, so an operator can look into it and the source can resend).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import IngestBatch, Source
from cdp.services.ingest import ingest_batch
from privacy.audit import AuditAction, audit_record
from privacy.crypto import open_sealed, seal, shred_subject

log = logging.getLogger(__name__)
PAYLOAD_FIELD = "ingest_batch"


def _source_of(actor: Actor) -> Source:
    actor.require_role(Role.SOURCE)
    source = Source.objects.filter(pk=actor.source_id).first() if actor.source_id else None
    if source is None:
        raise PermissionDenied("this source key is not bound to a source", code="source_unbound")
    return source


def _enqueue(batch_id: uuid.UUID) -> None:
    from cdp.tasks import ingest_run_queued_task

    ingest_run_queued_task.delay(str(batch_id))  # the id only: never the messages


def ingest_enqueue(*, actor: Actor, messages: list[Any]) -> IngestBatch:
    """Accept a batch for a worker: seal and store it, audit, queue its id after commit.

    Messages are not validated here (the worker does, one result each, as the synchronous
    path does); the envelope is: a non-empty list within CDP_INGEST_MAX_MESSAGES.
    """
    source = _source_of(actor)
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    if len(messages) > settings.CDP_INGEST_MAX_MESSAGES:
        raise ValueError(f"a batch holds at most {settings.CDP_INGEST_MAX_MESSAGES} messages")
    batch_id = uuid.uuid4()
    with transaction.atomic():
        batch = IngestBatch.objects.create(
            id=batch_id,
            source=source,
            received=len(messages),
            payload=seal(subject_id=batch_id, field=PAYLOAD_FIELD, value=messages),
            requested_by=actor.actor_id,
            request_id=actor.request_id,
        )
        audit_record(
            actor=actor,
            action=AuditAction.INGEST_QUEUED,
            purpose="identity_resolution",
            object_type="ingest_batch",
            object_id=batch.id,
            details={"received": len(messages), "source": source.pk},
        )
        # robust: a broker that is down must not fail the 202; the maintenance task queues it again.
        transaction.on_commit(lambda: _enqueue(batch_id), robust=True)
    return batch


def _batch_actor(batch: IngestBatch) -> Actor:
    """The source key that sent the batch: the ingestion is audited as its own."""
    return Actor(
        kind=ActorKind.API_KEY,
        actor_id=batch.requested_by,
        role=Role.SOURCE,
        source_id=batch.source_id,
        request_id=batch.request_id or uuid.uuid4().hex,
    )


def ingest_run_queued(*, batch_id: uuid.UUID | str) -> IngestBatch:
    """Ingest one queued batch (worker). Idempotent: a batch no longer queued is left alone.

    One transaction: the batch row is locked, its messages opened and ingested, the results
    stored, the payload dropped and the batch's data key shredded, or none of it.
    """
    try:
        with transaction.atomic():
            batch = IngestBatch.objects.select_for_update().get(id=batch_id)
            if batch.status != IngestBatch.Status.QUEUED:
                return batch
            messages = open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=bytes(batch.payload))
            result = ingest_batch(actor=_batch_actor(batch), messages=messages, batch_id=batch.id.hex)
            batch.status = IngestBatch.Status.DONE
            batch.counts = result.counts
            batch.results = [r.as_dict() for r in result.results]
            batch.merges, batch.refusals = result.merges, result.refusals
            batch.payload = None
            batch.attempts += 1
            batch.attempted_at = batch.finished_at = timezone.now()
            batch.save()
            shred_subject(subject_id=batch.id)
            return batch
    except Exception as exc:
        _record_failure(batch_id, exc)
        raise


def _record_failure(batch_id: uuid.UUID | str, exc: Exception) -> None:
    """Count the attempt; after CDP_INGEST_MAX_ATTEMPTS the batch is failed. Only the error's
    type is kept and logged: a message could quote the data that caused it."""
    with transaction.atomic():
        batch = IngestBatch.objects.select_for_update().filter(id=batch_id).first()
        if batch is None or batch.status != IngestBatch.Status.QUEUED:
            return
        batch.attempts += 1
        batch.attempted_at = timezone.now()
        if batch.attempts >= settings.CDP_INGEST_MAX_ATTEMPTS:
            batch.status, batch.error, batch.finished_at = IngestBatch.Status.FAILED, "internal_error", timezone.now()
        batch.save(update_fields=["attempts", "attempted_at", "status", "error", "finished_at"])
        log.warning("ingest batch %s attempt %s failed: %s", batch_id, batch.attempts, type(exc).__name__)


def ingest_batch_status(*, actor: Actor, batch_id: uuid.UUID | str) -> IngestBatch:
    """A queued batch as its source sees it. Another source's batch does not exist for it."""
    source = _source_of(actor)
    try:
        key = uuid.UUID(str(batch_id))
    except ValueError:
        raise IngestBatch.DoesNotExist from None
    return IngestBatch.objects.get(id=key, source=source)


def ingest_queue_maintenance() -> dict[str, int]:
    """Scheduled: hand batches queued too long to the broker again (a lost message, a worker
    that died), and drop batches past their retention, shredding any payload still held."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.CDP_INGEST_REQUEUE_AFTER_SECONDS)
    stale = list(
        IngestBatch.objects.filter(status=IngestBatch.Status.QUEUED, queued_at__lt=stale_before)
        .exclude(attempted_at__gte=stale_before)
        .values_list("id", flat=True)
    )
    for batch_id in stale:
        _enqueue(batch_id)
    expired = 0
    cutoff = now - timedelta(days=settings.CDP_INGEST_BATCH_RETENTION_DAYS)
    for batch in IngestBatch.objects.filter(queued_at__lt=cutoff).exclude(status=IngestBatch.Status.QUEUED):
        with transaction.atomic():
            shred_subject(subject_id=batch.id)  # a failed batch still holds its sealed messages
            batch.delete()
            expired += 1
    if stale or expired:
        audit_record(
            actor=Actor.system("ingest_queue_maintenance"),
            action=AuditAction.RETENTION_PURGE,
            object_type="ingest_batch",
            details={"requeued": len(stale), "expired": expired},
        )
    return {"requeued": len(stale), "expired": expired}
