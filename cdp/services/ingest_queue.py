"""Queued ingestion: accept a batch now (202), ingest it in a worker, let the source poll.

Why a sealed staging copy: the messages carry personal data and DESIGN invariant 1 forbids
plaintext personal data at rest or in the broker. So the batch is sealed under its own id as
the subject before it is stored, the Celery task carries only that id, and the worker shreds
the batch's data key in the same transaction that ingests the messages. After that, nothing of
the raw batch is readable anywhere, even in a backup taken while it was queued.

Ingestion itself is the synchronous path's (`ingest_batch`): same validation, resolution,
idempotency by (source, message_id) and audit; the batch's id is the audit entry's `batch`.
A worker claims an attempt (counted and committed) before it opens the payload, then ingests
in one transaction; a worker that dies mid-batch leaves the batch queued with that attempt
used. The maintenance task hands batches queued too long to the broker again; a batch that
has used CDP_INGEST_MAX_ATTEMPTS is marked failed, its sealed payload kept until the
retention job shreds it (an operator can look into it; the source resends). Failed attempts
are audited, and what they raise names the error's type only.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, Role
from cdp.models import IngestBatch
from cdp.services.ingest import ingest_batch, source_of_key
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.crypto import open_sealed, seal, shred_subject

log = logging.getLogger(__name__)
PAYLOAD_FIELD = "ingest_batch"


def _enqueue(batch_id: uuid.UUID) -> None:
    from cdp.tasks import ingest_run_queued_task

    ingest_run_queued_task.delay(str(batch_id))  # the id only: never the messages


def ingest_enqueue(*, actor: Actor, messages: list[Any]) -> IngestBatch:
    """Accept a batch for a worker: seal and store it, audit, queue its id after commit.

    Messages are not validated here (the worker does, one result each, as the synchronous
    path does); the envelope is: a non-empty list within CDP_INGEST_MAX_MESSAGES.
    """
    source = source_of_key(actor)
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
            # ASCII JSON (json's default): any string the parser accepted can be staged, lone
            # surrogates included; the worker's validation rejects such a message alone.
            payload=seal(subject_id=batch_id, field=PAYLOAD_FIELD, value=json.dumps(messages)),
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


class IngestBatchFailed(Exception):
    """A queued batch's attempt failed. Carries the error's type only: the original message
    could quote the data that caused it, and task errors reach worker logs and the result
    backend."""


def _claim(batch_id: uuid.UUID | str) -> IngestBatch | None:
    """Count an attempt in its own committed transaction, before the payload is opened, so a
    worker that dies mid-batch (killed, out of memory) still uses up one. Returns the batch to
    ingest, or None when it is not queued any more or has used up its attempts (then failed)."""
    with transaction.atomic():
        batch = IngestBatch.objects.select_for_update().filter(id=batch_id).first()
        if batch is None or batch.status != IngestBatch.Status.QUEUED:
            return None
        now = timezone.now()
        if batch.attempts >= settings.CDP_INGEST_MAX_ATTEMPTS:
            batch.status, batch.error, batch.finished_at = IngestBatch.Status.FAILED, "too_many_attempts", now
            batch.save(update_fields=["status", "error", "finished_at"])
            return None
        batch.attempts += 1
        batch.attempted_at = now
        batch.save(update_fields=["attempts", "attempted_at"])
        return batch


def ingest_run_queued(*, batch_id: uuid.UUID | str) -> IngestBatch:
    """Ingest one queued batch (worker). Idempotent: a batch no longer queued is left alone.

    After the attempt is claimed, one transaction: the batch row is locked, its messages opened
    and ingested, the results stored, the payload dropped and the batch's data key shredded, or
    none of it. Raises IngestBatchFailed (the error's type only) when the attempt fails.
    """
    if _claim(batch_id) is None:
        return IngestBatch.objects.get(id=batch_id)
    try:
        with transaction.atomic():
            batch = IngestBatch.objects.select_for_update().get(id=batch_id)
            if batch.status != IngestBatch.Status.QUEUED:
                return batch
            staged = open_sealed(subject_id=batch.id, field=PAYLOAD_FIELD, blob=bytes(batch.payload))
            result = ingest_batch(actor=_batch_actor(batch), messages=json.loads(staged), batch_id=batch.id.hex)
            batch.status = IngestBatch.Status.DONE
            batch.counts = result.counts
            batch.results = [r.as_dict() for r in result.results]
            batch.merges, batch.refusals = result.merges, result.refusals
            batch.payload = None
            batch.finished_at = timezone.now()
            batch.save()
            shred_subject(subject_id=batch.id)
            return batch
    except Exception as exc:
        _record_failure(batch_id, exc)
        raise IngestBatchFailed(f"ingest batch {batch_id}: {type(exc).__name__}") from None


def _record_failure(batch_id: uuid.UUID | str, exc: Exception) -> None:
    """Audit the failed attempt (its payload was opened) and, after CDP_INGEST_MAX_ATTEMPTS,
    fail the batch. Only the error's type is kept, logged and audited."""
    with transaction.atomic():
        batch = IngestBatch.objects.select_for_update().filter(id=batch_id).first()
        if batch is None or batch.status != IngestBatch.Status.QUEUED:
            return
        if batch.attempts >= settings.CDP_INGEST_MAX_ATTEMPTS:
            batch.status, batch.error, batch.finished_at = IngestBatch.Status.FAILED, "internal_error", timezone.now()
            batch.save(update_fields=["status", "error", "finished_at"])
        audit_record(
            actor=_batch_actor(batch),
            action=AuditAction.INGEST_BATCH,
            outcome=Outcome.ERROR,
            purpose="identity_resolution",
            object_type="ingest_batch",
            object_id=batch.id,
            details={"batch": batch.id.hex, "attempt": batch.attempts, "error": type(exc).__name__[:64]},
        )
    log.warning("ingest batch %s attempt %s failed: %s", batch_id, batch.attempts, type(exc).__name__)


def ingest_batch_status(*, actor: Actor, batch_id: uuid.UUID | str) -> IngestBatch:
    """A queued batch as its source sees it. Another source's batch does not exist for it."""
    source = source_of_key(actor)
    try:
        key = uuid.UUID(str(batch_id))
    except ValueError:
        raise IngestBatch.DoesNotExist from None
    return IngestBatch.objects.get(id=key, source=source)


def ingest_queue_maintenance() -> dict[str, int]:
    """Scheduled: hand batches queued too long to the broker again (a lost message, a worker
    that died: attempts are counted when claimed), fail batches still queued after their
    retention (nothing could ingest them; their sealed messages are shredded), and drop
    batches finished longer ago than their retention, shredding what a failed one still held.

    Under a backlog longer than CDP_INGEST_REQUEUE_AFTER_SECONDS a batch may be handed out twice;
    the second delivery finds it done (the row lock serialises them).
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.CDP_INGEST_REQUEUE_AFTER_SECONDS)
    cutoff = now - timedelta(days=settings.CDP_INGEST_BATCH_RETENTION_DAYS)
    queued = IngestBatch.objects.filter(status=IngestBatch.Status.QUEUED)
    abandoned = 0
    for batch in queued.filter(queued_at__lt=cutoff):
        with transaction.atomic():
            shred_subject(subject_id=batch.id)
            IngestBatch.objects.filter(id=batch.id, status=IngestBatch.Status.QUEUED).update(
                status=IngestBatch.Status.FAILED, error="expired", payload=None, finished_at=now
            )
            abandoned += 1
    stale = list(
        queued.filter(queued_at__lt=stale_before).exclude(attempted_at__gte=stale_before).values_list("id", flat=True)
    )
    for batch_id in stale:
        _enqueue(batch_id)
    expired = 0
    for batch in IngestBatch.objects.exclude(status=IngestBatch.Status.QUEUED).filter(finished_at__lt=cutoff):
        with transaction.atomic():
            shred_subject(subject_id=batch.id)  # a failed batch still holds its sealed messages
            batch.delete()
            expired += 1
    counts = {"requeued": len(stale), "abandoned": abandoned, "expired": expired}
    if abandoned or expired:
        audit_record(
            actor=Actor.system("ingest_queue_maintenance"),
            action=AuditAction.RETENTION_PURGE,
            object_type="ingest_batch",
            details=counts,
        )
    return counts
