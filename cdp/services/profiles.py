"""Profile 360, lookup by identifier, timeline and unmerge: every read checks role and purpose
and leaves an audit entry (invariant 2), because each of them opens personal data.

Roles: reads are for stewards and compliance officers, lookup and unmerge for stewards. A
purpose is always required: the audit trail must say why someone looked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from cdp.actor import Actor, Role
from cdp.models import Event, Profile, ProfileStatus
from identity.graph import split_merge
from identity.models import Identifier, MergeEvidence, MergeRefusal
from identity.normalize import NormalizationError, normalize_identifier
from identity.registry import identifier_types
from privacy.audit import AuditAction, audit_record
from privacy.crypto import DecryptionError, KeyShreddedError, blind_index, open_sealed

READ_ROLES = (Role.STEWARD, Role.COMPLIANCE)


class ProfileNotFound(LookupError):
    """No such profile (the message never names personal data)."""


class ProfileMoved(Exception):
    """The profile was merged: the caller should go to the survivor."""

    def __init__(self, survivor_id: uuid.UUID) -> None:
        super().__init__("the profile was merged into another one")
        self.survivor_id = survivor_id


class UnmergeError(ValueError):
    """The profile has no live merge to undo."""


@dataclass
class ProfileView:
    profile: Profile
    traits: dict[str, Any]
    identifiers: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    refusals: list[dict[str, Any]]
    event_count: int


def _check(actor: Actor, roles: tuple[str, ...]) -> str:
    actor.require_role(*roles)
    return actor.require_purpose()


def _survivor_of(profile: Profile) -> Profile:
    hops = 0
    while profile.status == ProfileStatus.MERGED and profile.merged_into_id and hops < 64:
        profile = Profile.objects.get(id=profile.merged_into_id)
        hops += 1
    return profile


def _open(subject: uuid.UUID, field: str, blob) -> Any:
    try:
        return open_sealed(subject_id=subject, field=field, blob=blob)
    except KeyShreddedError:
        return None
    except DecryptionError:
        return None


def _merge_history(profile_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = MergeEvidence.objects.filter(survivor_id=profile_id) | MergeEvidence.objects.filter(absorbed_id=profile_id)
    return [
        {
            "evidence_id": e.pk,
            "survivor": str(e.survivor_id),
            "absorbed": str(e.absorbed_id),
            "rule": e.rule,
            "identifiers": e.identifier_refs,
            "source": e.source.name if e.source else "",
            "message_id": e.message_id,
            "merged_at": e.merged_at,
            "undone_at": e.undone_at,
        }
        for e in rows.select_related("source").order_by("merged_at", "id")
    ]


def profile_read(*, actor: Actor, profile_id: uuid.UUID) -> ProfileView:
    """The 360 view of one active profile: traits opened, identifiers opened, merge history.

    A merged id raises ProfileMoved (after the role and purpose check, before any personal
    data is opened); an unknown id raises ProfileNotFound.
    """
    _check(actor, READ_ROLES)
    profile = Profile.objects.filter(id=profile_id).first()
    if profile is None:
        raise ProfileNotFound("no such profile")
    if profile.status == ProfileStatus.MERGED:
        raise ProfileMoved(_survivor_of(profile).id)
    traits = (_open(profile.id, "traits", profile.vault) or {}) if profile.vault else {}
    identifiers = [
        {
            "type": i.id_type,
            "value": _open(i.origin_profile_id, f"identifier:{i.id_type}", i.sealed_value),
            "blind_index_ref": i.blind_index[:16],
            "over_limit": i.over_limit,
            "first_seen_at": i.first_seen_at,
            "last_seen_at": i.last_seen_at,
        }
        for i in Identifier.objects.filter(profile=profile).order_by("id_type", "first_seen_at")
    ]
    refusals = [
        {"rule": r.rule, "id_type": r.id_type, "blind_index_ref": r.blind_index_ref, "refused_at": r.refused_at}
        for r in MergeRefusal.objects.filter(profile=profile).order_by("-refused_at")[:50]
    ]
    view = ProfileView(
        profile=profile,
        traits=traits,
        identifiers=identifiers,
        merges=_merge_history(profile.id),
        refusals=refusals,
        event_count=Event.objects.filter(profile=profile).count(),
    )
    audit_record(
        actor=actor,
        action=AuditAction.PROFILE_READ,
        subject_id=profile.id,
        object_type="profile",
        object_id=profile.id,
        details={"view": "360", "identifiers": len(identifiers), "traits": len(traits)},
    )
    return view


def profile_lookup(*, actor: Actor, identifiers: dict[str, str]) -> list[dict[str, Any]]:
    """Find profiles by identifiers through their blind indexes; returns survivor ids only.

    Raises ValueError (with a code-like message) for an unknown type or an invalid value.
    """
    _check(actor, (Role.STEWARD,))
    if not identifiers:
        raise ValueError("give at least one identifier")
    types = identifier_types()
    matches: dict[uuid.UUID, set[str]] = {}
    for id_type, value in identifiers.items():
        if id_type not in types:
            raise ValueError(f"unknown identifier type '{id_type[:40]}'")
        try:
            canonical = normalize_identifier(id_type, value)
        except NormalizationError as exc:
            raise ValueError(exc.reason) from exc
        ident = (
            Identifier.objects.select_related("profile")
            .filter(id_type=id_type, blind_index=blind_index(id_type=id_type, value=canonical))
            .first()
        )
        if ident is not None:
            matches.setdefault(_survivor_of(ident.profile).id, set()).add(id_type)
    audit_record(
        actor=actor,
        action=AuditAction.PROFILE_LOOKUP,
        object_type="profile",
        details={"types": sorted(identifiers), "matches": len(matches)},
    )
    return [{"profile_id": str(pid), "matched_by": sorted(kinds)} for pid, kinds in matches.items()]


def profile_events(*, actor: Actor, profile_id: uuid.UUID) -> QuerySet[Event]:
    """The profile's event timeline (newest first) for paginated display; audited as a read."""
    _check(actor, READ_ROLES)
    profile = Profile.objects.filter(id=profile_id).first()
    if profile is None:
        raise ProfileNotFound("no such profile")
    if profile.status == ProfileStatus.MERGED:
        raise ProfileMoved(_survivor_of(profile).id)
    audit_record(
        actor=actor,
        action=AuditAction.PROFILE_READ,
        subject_id=profile.id,
        object_type="profile",
        object_id=profile.id,
        details={"view": "timeline"},
    )
    return Event.objects.filter(profile=profile).select_related("source")


def event_properties(event: Event) -> dict[str, Any]:
    """Plain and (opened) sealed properties of one event from a timeline already audited."""
    sealed = _open(event.profile_id, "properties", event.sealed_properties) if event.sealed_properties else None
    return {**(event.properties or {}), **(sealed or {})}


def profile_unmerge(*, actor: Actor, profile_id: uuid.UUID) -> dict[str, Any]:
    """Undo the latest merge of the (absorbed) profile `profile_id`, in one transaction.

    Identifiers, trait history and events go back to the side the evidence says they came
    from, including ones that arrived after the merge; the pair is then never auto-merged
    again. Raises ProfileNotFound or UnmergeError.
    """
    _check(actor, (Role.STEWARD,))
    with transaction.atomic():
        if not Profile.objects.filter(id=profile_id).exists():
            raise ProfileNotFound("no such profile")
        try:
            result = split_merge(absorbed_id=profile_id, actor_id=actor.actor_id)
        except LookupError as exc:
            raise UnmergeError(str(exc)) from exc
        audit_record(
            actor=actor,
            action=AuditAction.PROFILE_UNMERGE,
            subject_id=result.restored.id,
            object_type="merge_evidence",
            object_id=result.evidence.pk,
            details={
                "survivor": str(result.survivor.id),
                "identifiers": result.identifiers,
                "events": result.events,
                "observations": result.observations,
            },
        )
    return {
        "evidence_id": result.evidence.pk,
        "restored": str(result.restored.id),
        "survivor": str(result.survivor.id),
        "identifiers": result.identifiers,
        "events": result.events,
        "observations": result.observations,
    }
