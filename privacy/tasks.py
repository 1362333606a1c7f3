"""Celery tasks of the privacy app. Thin: call one idempotent service each."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from cdp.actor import Actor


@shared_task(name="privacy.audit_checkpoint", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def audit_checkpoint() -> int | None:
    """Sign the audit chain's head (beat, every CDP_AUDIT_CHECKPOINT_SECONDS). Idempotent: an
    unchanged head is not signed again. Returns the signed seq, or None."""
    from privacy.audit.checkpoints import checkpoint_create

    checkpoint = checkpoint_create(actor=Actor.system("audit_checkpoint"))
    return checkpoint.seq if checkpoint else None


@shared_task(name="privacy.audit_verify", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def audit_verify_chain() -> dict:
    """Verify the whole chain (beat, daily); the result lands in an `audit.verify` entry."""
    from privacy.audit.verify import audit_verify

    return audit_verify(actor=Actor.system("audit_verify")).as_dict()


@shared_task(name="privacy.dsar_process", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def dsar_process(request_id: int) -> str:
    """Build the package of an access/portability request, or run (resume) an erasure; the
    request is completed when the work is done. Idempotent: safe to retry after a crash."""
    from privacy.dsar.services import dsar_process as process

    return process(actor=Actor.system("dsar_process"), request_id=request_id).status


@shared_task(name="privacy.dsar_deadlines", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def dsar_deadlines() -> dict:
    """Flag requests near their deadline or overdue (beat, hourly; audited `dsar.deadline`) and
    queue again queued work that stalled (a killed worker): erasure resumes where it stopped."""
    from privacy.dsar.services import dsar_deadlines_flag, dsar_resume_stalled

    actor = Actor.system("dsar_deadlines")
    counts = dsar_deadlines_flag(actor=actor)
    counts["resumed"] = len(dsar_resume_stalled(actor=actor))
    return counts


@shared_task(name="privacy.dsar_packages_expire", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def dsar_packages_expire() -> int:
    """Destroy access packages past their download window (beat, hourly)."""
    from privacy.dsar.package import dsar_packages_expire as expire

    return expire(actor=Actor.system("dsar_packages_expire"))


@shared_task(name="privacy.retention_purge", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def retention_purge() -> dict:
    """Purge expired events and profiles left with no basis (beat, daily); audited."""
    from privacy.retention import retention_purge as purge

    return purge(actor=Actor.system("retention_purge")).as_dict()


@shared_task(name="privacy.breach_deadlines", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def breach_deadlines() -> dict:
    """Flag open breaches near or past their 72-hour deadline (beat, every 15 min; audited `breach.deadline`)."""
    from privacy.compliance.services import breaches_flag_deadlines

    return breaches_flag_deadlines(actor=Actor.system("breach_deadlines"))
