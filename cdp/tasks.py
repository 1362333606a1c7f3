"""Celery tasks of the customer core. Thin: take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="cdp.ping")
def ping() -> str:
    """Liveness probe for the broker and workers (used by /api/v1/health and the tests)."""
    return "pong"


@shared_task(name="cdp.segment_materialise")
def segment_materialise_task(segment_id: int) -> int:
    """Rebuild one segment's membership in SQL (idempotent). Returns the definition version it
    computed, never the member count: task results reach worker logs and the result backend,
    and an exact segment size belongs only in the audit entry."""
    from cdp.services.segments import segment_materialise

    return segment_materialise(segment_id=segment_id).version


@shared_task(name="cdp.segments_refresh")
def segments_refresh_task() -> int:
    """Scheduled: re-materialise every segment, and shred expired exports."""
    from cdp.services.segments import exports_expire, segments_refresh_all

    exports_expire()
    return segments_refresh_all()


@shared_task(name="cdp.segment_export_build")
def segment_export_build_task(export_id: str) -> str:
    """Build one consent-gated export (idempotent: only a pending export is built)."""
    from cdp.services.segments import export_build

    return export_build(export_id=export_id).status


@shared_task(name="cdp.ingest_run_queued")
def ingest_run_queued_task(batch_id: str) -> str:
    """Ingest one queued batch (idempotent). Returns its status, never its results: task
    results reach worker logs and the result backend."""
    from cdp.services.ingest_queue import ingest_run_queued

    return ingest_run_queued(batch_id=batch_id).status


@shared_task(name="cdp.ingest_queue_maintenance")
def ingest_queue_maintenance_task() -> dict:
    """Scheduled: queue stalled batches again and drop expired ones (counts only)."""
    from cdp.services.ingest_queue import ingest_queue_maintenance

    return ingest_queue_maintenance()
