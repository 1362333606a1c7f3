"""Reads of the request queue (for the staff compliance page)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from privacy.dsar.models import DataSubjectRequest


def dsar_queue(*, limit: int = 200) -> list[dict]:
    """Open requests, earliest deadline first, with days left and overdue/near flags. Holds no
    personal data (pseudonymous ids, types, dates), so it is not audited as a read."""
    now = timezone.now()
    warn = timedelta(days=int(settings.CDP_DSAR_WARN_DAYS))
    rows = DataSubjectRequest.objects.filter(status__in=DataSubjectRequest.OPEN_STATUSES).order_by("due_at", "id")
    return [
        {
            "request": r,
            "days_left": (r.due_at.date() - now.date()).days,
            "overdue": r.due_at <= now,
            "near": now < r.due_at <= now + warn,
        }
        for r in rows[:limit]
    ]
