"""Celery tasks of the customer core. Thin: take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="cdp.ping")
def ping() -> str:
    """Liveness probe for the broker and workers (used by /api/v1/health and the tests)."""
    return "pong"
