"""Reads of purposes, notices and a subject's consent. No audit here: the services that hand
these to a caller audit the read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from consent.models import GRANTING_EVENTS, ConsentRecord, ConsentState, PolicyVersion, Purpose

# Derived states a person sees and enforcement decides on.
STATE_GRANTED = "granted"
STATE_WITHDRAWN = "withdrawn"
STATE_EXPIRED = "expired"
STATE_STALE = "stale"  # granted to a notice a later material version replaced
STATE_NOT_SET = "not_set"
STATE_NOT_REQUIRED = "not_required"  # the purpose rests on another legal basis


def purposes_list(*, active_only: bool = True) -> QuerySet[Purpose]:
    query = Purpose.objects.prefetch_related("policy_versions")
    return query.filter(active=True) if active_only else query


def policy_current(*, purpose: Purpose, language: str = "en", at: datetime | None = None) -> PolicyVersion | None:
    """The latest published notice in `language` (falling back to any language)."""
    moment = at or timezone.now()
    published = PolicyVersion.objects.filter(purpose=purpose, published_at__lte=moment)
    latest = published.aggregate(v=Max("version"))["v"]
    if latest is None:
        return None
    release = published.filter(version=latest)
    return release.filter(language=language).first() or release.order_by("language").first()


def material_floor(*, purpose_id: int, at: datetime | None = None) -> int:
    """The lowest policy version a consent must name to count at `at`: the latest published
    material version (0 when there is none)."""
    moment = at or timezone.now()
    found = PolicyVersion.objects.filter(purpose_id=purpose_id, material=True, published_at__lte=moment).aggregate(
        v=Max("version")
    )["v"]
    return found or 0


def material_floors(*, at: datetime | None = None) -> dict[int, int]:
    moment = at or timezone.now()
    rows = (
        PolicyVersion.objects.filter(material=True, published_at__lte=moment)
        .values("purpose_id")
        .annotate(v=Max("version"))
    )
    return {row["purpose_id"]: row["v"] for row in rows}


def derive_state(
    *, event: str, policy_version_number: int, expires_at: datetime | None, floor: int, at: datetime
) -> str:
    """One scope's state from its latest record: the rule enforcement applies in SQL."""
    if event in GRANTING_EVENTS:
        if expires_at is not None and expires_at <= at:
            return STATE_EXPIRED
        if policy_version_number < floor:
            return STATE_STALE
        return STATE_GRANTED
    if event == "expired":
        return STATE_EXPIRED
    return STATE_WITHDRAWN


def consent_history(*, subject_id: uuid.UUID | str) -> QuerySet[ConsentRecord]:
    return (
        ConsentRecord.objects.filter(subject_id=subject_id)
        .select_related("purpose", "policy_version")
        .order_by("occurred_at", "id")
    )


def consent_overview(*, subject_id: uuid.UUID | str, at: datetime | None = None) -> list[dict[str, Any]]:
    """Per active purpose: the derived state of each channel scope, the overall state (the
    all-channels scope, or the latest scope), and the purpose's current notice version."""
    moment = at or timezone.now()
    floors = material_floors(at=moment)
    states = {}
    for state in ConsentState.objects.filter(subject_id=subject_id).order_by("occurred_at", "record_id"):
        states.setdefault(state.purpose_id, []).append(state)
    result = []
    for purpose in Purpose.objects.filter(active=True).order_by("code"):
        scopes = []
        for state in states.get(purpose.pk, []):
            derived = derive_state(
                event=state.event,
                policy_version_number=state.policy_version_number,
                expires_at=state.expires_at,
                floor=floors.get(purpose.pk, 0),
                at=moment,
            )
            scopes.append(
                {
                    "channel": state.channel,
                    "state": derived,
                    "event": state.event,
                    "policy_version": state.policy_version_number,
                    "occurred_at": state.occurred_at,
                    "record_id": state.record_id,
                }
            )
        if not purpose.needs_consent:
            overall = STATE_NOT_REQUIRED
        elif not scopes:
            overall = STATE_NOT_SET
        else:
            overall = scopes[-1]["state"]  # the latest decision across scopes
        result.append(
            {
                "purpose": purpose.code,
                "legal_basis": purpose.legal_basis,
                "state": overall,
                "scopes": scopes,
                "current_policy_version": (floors.get(purpose.pk) or 0),
            }
        )
    return result
