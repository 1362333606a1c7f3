"""Reads of the audit trail: search (audited) and the compliance page's summaries."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from cdp.actor import Actor, Role
from privacy.audit.actions import AuditAction
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.writer import audit_record

SEARCH_ROLES = (Role.COMPLIANCE, Role.ADMIN)


def audit_entries_search(
    *,
    actor: Actor,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: str = "",
    action: str = "",
    subject_id: uuid.UUID | None = None,
    purpose: str = "",
    outcome: str = "",
) -> QuerySet[AuditEntry]:
    """Entries matching every given filter, in seq order; the search itself is audited.

    The `audit.search` entry records which filters were used and the searched subject (a
    pseudonymous id), never the filter text: an actor filter is free text typed by a person.
    """
    actor.require_role(*SEARCH_ROLES)
    filters: dict[str, Any] = {}
    if since is not None:
        filters["occurred_at__gte"] = since
    if until is not None:
        filters["occurred_at__lt"] = until
    if actor_id:
        filters["actor_id"] = actor_id
    if action:
        filters["action"] = action
    if subject_id is not None:
        filters["subject_id"] = subject_id
    if purpose:
        filters["purpose"] = purpose
    if outcome:
        filters["outcome"] = outcome
    recorded = audit_record(
        actor=actor,
        action=AuditAction.AUDIT_SEARCH,
        subject_id=subject_id,
        object_type="audit_chain",
        details={"filters": sorted(k.split("__")[0] for k in filters)},
    )
    # What existed when the search was made: not the search's own entry, nor later ones.
    return AuditEntry.objects.filter(seq__lt=recorded.seq, **filters).order_by("seq")


def audit_activity(*, days: int = 14, today: date | None = None) -> dict[str, Any]:
    """Entries per day and action over the last `days` days (for the compliance chart)."""
    today = today or timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        AuditEntry.objects.filter(occurred_at__date__gte=start)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "action")
        .annotate(n=Count("id"))
        .order_by("day", "action")
    )
    dates = [start + timedelta(days=i) for i in range(days)]
    counts: dict[str, dict[date, int]] = {}
    for row in rows:
        counts.setdefault(row["action"], {})[row["day"]] = row["n"]
    return {"dates": dates, "counts": counts}


def audit_last_verification() -> AuditEntry | None:
    return AuditEntry.objects.filter(action=AuditAction.AUDIT_VERIFY).order_by("-seq").first()


def audit_chain_summary() -> dict[str, Any]:
    head = AuditEntry.objects.order_by("-seq").values("seq", "hash", "occurred_at").first()
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    return {"head": head, "checkpoint": checkpoint}
