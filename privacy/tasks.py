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
