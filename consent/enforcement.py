"""Enforcement: who may be processed for a purpose and channel, decided in SQL on every call.

The contract every other app calls (segment exports, campaigns, DP populations, ingestion of
personal data for a purpose):

- `profiles_consented_for(queryset, *, purpose, channel=None, at=None) -> QuerySet` narrows a
  Profile queryset to active, non-restricted profiles that may be processed for the purpose
  and channel. For a consent-based purpose that means a current, non-stale, unexpired grant
  whose scope (all channels, or exactly this channel) is the latest decision for the channel.
  Purposes on another legal basis pass unless the person objected or restricted processing.
- `require_processing_allowed(*, subject_id, purpose, channel=None)` raises `ConsentRequired`
  for one subject when the same rule says no.

Nothing is cached: a withdrawal committed before the call is honoured by the call
(GDPR Art. 7(3), PIPL Art. 15). `at` evaluates the ledger as it stood at that moment.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from cdp.actor import PermissionDenied
from cdp.models import Profile, ProfileStatus
from consent.models import GRANTING_EVENTS, ConsentRecord, ConsentState, ProcessingRestriction, Purpose
from consent.selectors import material_floor


class ConsentRequired(PermissionDenied):
    """Processing this subject for this purpose (and channel) is not allowed now."""

    def __init__(
        self, message: str = "the subject has not consented to this purpose", *, code: str = "consent_required"
    ):
        super().__init__(message, code=code)


class UnknownPurpose(ValueError):
    """The purpose code is not in the registry (a programming error in the caller)."""


def _purpose(code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=code).first()
    if purpose is None:
        raise UnknownPurpose(f"unknown purpose {code!r}")
    return purpose


def _restricted(purpose: Purpose, at: datetime | None) -> Exists:
    """Restriction or objection covering this purpose (or every purpose)."""
    query = ProcessingRestriction.objects.filter(subject=OuterRef("pk"), active=True).filter(
        Q(purpose__isnull=True) | Q(purpose=purpose)
    )
    if at is not None:
        query = query.filter(created_at__lte=at)
    return Exists(query)


def _granted(purpose: Purpose, channel: str | None, at: datetime | None) -> Exists:
    """A granting row whose scope applies to the channel and that no later row for an
    applicable scope overrides. Current state from ConsentState; history from the ledger."""
    moment = at or timezone.now()
    scopes = ["", channel] if channel else [""]
    model = ConsentState if at is None else ConsentRecord
    order_id = "record_id" if at is None else "id"
    base = model.objects.filter(purpose=purpose, channel__in=scopes)
    if at is not None:
        base = base.filter(occurred_at__lte=at)
    later = base.filter(subject=OuterRef("subject")).filter(
        Q(occurred_at__gt=OuterRef("occurred_at"))
        | Q(occurred_at=OuterRef("occurred_at"), **{f"{order_id}__gt": OuterRef(order_id)})
    )
    version_field = "policy_version_number"
    grants = (
        base.filter(subject=OuterRef("pk"), event__in=GRANTING_EVENTS)
        .filter(**{f"{version_field}__gte": material_floor(purpose_id=purpose.pk, at=moment)})
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=moment))
        .filter(~Exists(later))
    )
    return Exists(grants)


def profiles_consented_for(
    queryset: QuerySet[Profile], *, purpose: str, channel: str | None = None, at: datetime | None = None
) -> QuerySet[Profile]:
    """Narrow `queryset` (of Profile) to people who may be processed for purpose + channel."""
    purpose_obj = _purpose(purpose)
    if not purpose_obj.active:
        return queryset.none()
    if channel and purpose_obj.channels and channel not in purpose_obj.channels:
        return queryset.none()
    allowed = queryset.filter(status=ProfileStatus.ACTIVE).exclude(_restricted(purpose_obj, at))
    if not purpose_obj.needs_consent:
        return allowed
    return allowed.filter(_granted(purpose_obj, channel or None, at))


def require_processing_allowed(*, subject_id: uuid.UUID | str, purpose: str, channel: str | None = None) -> None:
    """Raise ConsentRequired unless the subject may be processed for purpose + channel now."""
    base = Profile.objects.filter(pk=uuid.UUID(str(subject_id)))
    if not profiles_consented_for(base, purpose=purpose, channel=channel).exists():
        raise ConsentRequired(
            f"processing for purpose '{purpose}'{f' on channel {channel!r}' if channel else ''} is not allowed "
            "for this subject (no current consent, or restricted)"
        )
