"""Portal services: what the person sees, and the changes they make, as the person themselves
(an Actor of kind portal whose id is their pseudonymous subject id)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import transaction

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Event, Profile, TraitDefinition
from consent import selectors
from consent.models import ConsentMethod, Purpose
from consent.services import consent_record, portal_actor_id, subject_traits
from privacy.audit import AuditAction, audit_record
from privacy.dsar.models import DataSubjectRequest, DsarChannel, DsarType, VerificationMethod
from privacy.dsar.services import dsar_create

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "IS",
        "LI",
        "NO",
    ]
)
PORTAL_REQUEST_TYPES = (DsarType.ACCESS, DsarType.ERASURE)


def _check(actor: Actor, subject_id: uuid.UUID) -> None:
    if actor.kind != ActorKind.PORTAL or actor.role != Role.SUBJECT or actor.actor_id != portal_actor_id(subject_id):
        raise PermissionDenied("only the person's own portal session may do this")


def data_categories_held(subject: Profile) -> list[str]:
    """Which kinds of data are held (never the values): trait keys from the vault and plain
    attributes, mapped to their registry data category, plus activity and consent records."""
    keys = set(subject_traits(subject)) | set(subject.attributes or {})
    categories = set(
        TraitDefinition.objects.filter(kind=TraitDefinition.Kind.TRAIT, key__in=keys)
        .exclude(data_category="")
        .values_list("data_category", flat=True)
    )
    known = set(
        TraitDefinition.objects.filter(kind=TraitDefinition.Kind.TRAIT, key__in=keys).values_list("key", flat=True)
    )
    if keys - known:
        categories.add("other")
    if Event.objects.filter(profile=subject).exists():
        categories.add("events")
    if subject.consent_records.exists():
        categories.add("consent")
    return sorted(categories)


def subject_jurisdiction(subject: Profile) -> str:
    """PIPL or GDPR for the person's requests: by their country when known, else the default."""
    country = str(subject.attributes.get("country") or subject_traits(subject).get("country") or "").upper()
    if country == "CN":
        return "pipl"
    if country in EU_COUNTRIES:
        return "gdpr"
    return settings.CDP_DSAR_DEFAULT_JURISDICTION


def portal_overview(*, actor: Actor, subject_id: uuid.UUID, language: str) -> dict[str, Any]:
    """Everything the portal page shows, read once and audited (portal.view)."""
    _check(actor, subject_id)
    subject = Profile.objects.get(pk=subject_id)
    overview = {row["purpose"]: row for row in selectors.consent_overview(subject_id=subject_id)}
    history: dict[str, list] = {}
    for record in selectors.consent_history(subject_id=subject_id):
        history.setdefault(record.purpose.code, []).append(record)
    purposes = []
    for purpose in Purpose.objects.filter(active=True).order_by("code"):
        notice = selectors.policy_current(purpose=purpose, language=language)
        purposes.append(
            {
                "purpose": purpose,
                "name": purpose.name_zh if language == "zh-hans" else purpose.name_en,
                "notice": notice,
                "state": overview[purpose.code]["state"],
                "history": list(reversed(history.get(purpose.code, []))),
            }
        )
    requests = list(DataSubjectRequest.objects.filter(subject=subject).order_by("-received_at"))
    categories = data_categories_held(subject)
    audit_record(
        actor=actor,
        action=AuditAction.PORTAL_VIEW,
        subject_id=subject_id,
        details={"purposes": len(purposes), "categories": len(categories)},
    )
    return {"purposes": purposes, "categories": categories, "requests": requests}


def portal_consent_change(
    *, actor: Actor, subject_id: uuid.UUID, purpose: str, grant: bool, language: str, user_agent: str, ip_address: str
):
    """One click on a purpose's toggle: a grant or withdrawal with the portal as evidence."""
    _check(actor, subject_id)
    return consent_record(
        actor=actor,
        subject_id=subject_id,
        purpose=purpose,
        event="granted" if grant else "withdrawn",
        method=ConsentMethod.PORTAL_TOGGLE,
        source="portal",
        language=language,
        ip_address=ip_address,
        user_agent=user_agent,
    )


def portal_request_create(*, actor: Actor, subject_id: uuid.UUID, request_type: str) -> DataSubjectRequest:
    """A copy or erasure request from the portal, received now. The person reached the portal by
    a single-use link sent to a contact the brand holds: that is the verification recorded."""
    _check(actor, subject_id)
    if request_type not in PORTAL_REQUEST_TYPES:
        raise PermissionDenied("the portal files only copy and erasure requests", code="invalid_request_type")
    subject = Profile.objects.get(pk=subject_id)
    with transaction.atomic():
        return dsar_create(
            actor=actor,
            subject_id=subject_id,
            request_type=request_type,
            jurisdiction=subject_jurisdiction(subject),
            channel=DsarChannel.PORTAL,
            verification_method=VerificationMethod.PORTAL_LINK,
        )


def portal_close(*, actor: Actor, subject_id: uuid.UUID) -> None:
    """The person ended their session."""
    _check(actor, subject_id)
    audit_record(actor=actor, action=AuditAction.PORTAL_CLOSE, subject_id=subject_id)
