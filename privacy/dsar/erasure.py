"""Erasure (GDPR Art. 17; PIPL Art. 47): resumable, idempotent, step by step.

Steps run in order, each in its own transaction that also records it as done on the request
(`progress`), so a worker killed half-way resumes at the first step not done; every step is
idempotent on its own as well (deleting what is already gone deletes nothing). Full erasure:
suppress (blind indexes kept so re-ingestion is dropped), delete events, identifiers and trait
history, empty the vault, let providers erase their rows, destroy cached packages and portal
links, shred the data keys, mark the profile erased and write the receipt (`profile.erase`)
listing what is kept under a legal obligation. Partial erasure (`event_names` or `channel`)
deletes only the matching events and writes a receipt.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q

from cdp.actor import Actor, Role
from cdp.models import Event, Profile, ProfileStatus
from privacy.audit import AuditAction, audit_record
from privacy.dsar.models import DataSubjectRequest, DsarPackage
from privacy.dsar.providers import providers

FULL_STEPS = ("suppress", "events", "identifiers", "traits", "providers", "packages", "shred", "finish")
PARTIAL_STEPS = ("events", "finish")

# Kept on purpose, with the obligation that requires it; listed in every receipt.
LEGAL_EXCEPTIONS = [
    {
        "data": "consent ledger rows (pseudonymous id, purpose, notice hash, keyed hashes)",
        "basis": "proof of lawful basis: GDPR Arts. 7(1), 17(3)(b)/(e); PIPL Art. 47(2)",
    },
    {
        "data": "audit trail entries (pseudonymous id, actions, counts)",
        "basis": "accountability and security logging: GDPR Arts. 5(2), 30, 32; PIPL Arts. 54-55",
    },
    {
        "data": "suppression list (keyed blind indexes of identifiers, no values)",
        "basis": "honouring the erasure itself: GDPR Art. 17(1) and 19; PIPL Art. 47",
    },
    {
        "data": "the request record and its deadlines",
        "basis": "demonstrating the request was answered: GDPR Art. 12(3)-(4), 5(2); PIPL Art. 50",
    },
]


def _absorbed_ids(subject_id: uuid.UUID) -> list[uuid.UUID]:
    return list(Profile.objects.filter(merged_into_id=subject_id).values_list("pk", flat=True))


def _step_suppress(request: DataSubjectRequest) -> int:
    from identity.models import Identifier, Suppression

    created = 0
    for id_type, bi in Identifier.objects.filter(profile_id=request.subject_id).values_list("id_type", "blind_index"):
        _, made = Suppression.objects.get_or_create(id_type=id_type, blind_index=bi, defaults={"reason": "erasure"})
        created += int(made)
    return created


def _event_filter(request: DataSubjectRequest) -> Q:
    options = request.options or {}
    query = Q(profile_id=request.subject_id)
    if options.get("event_names"):
        query &= Q(name__in=options["event_names"])
    if options.get("channel"):
        query &= Q(channel=options["channel"])
    return query


def _step_events(request: DataSubjectRequest) -> int:
    return Event.objects.filter(_event_filter(request)).delete()[0]


def _step_identifiers(request: DataSubjectRequest) -> int:
    from identity.models import Identifier

    ids = [request.subject_id, *_absorbed_ids(request.subject_id)]
    return Identifier.objects.filter(Q(profile_id__in=ids) | Q(origin_profile_id__in=ids)).delete()[0]


def _step_traits(request: DataSubjectRequest) -> int:
    from identity.models import TraitObservation

    ids = [request.subject_id, *_absorbed_ids(request.subject_id)]
    deleted = TraitObservation.objects.filter(Q(profile_id__in=ids) | Q(origin_profile_id__in=ids)).delete()[0]
    Profile.objects.filter(pk__in=ids).update(vault=None, attributes={}, trait_observed_at={}, journey_stage="")
    return deleted


def _step_providers(request: DataSubjectRequest) -> int:
    return sum(int(p.erase(request.subject_id)) for p in providers() if p.erase is not None)


def _step_packages(request: DataSubjectRequest) -> int:
    from consent.models import PortalLink
    from privacy.crypto import shred_subject

    count = 0
    for package in DsarPackage.objects.filter(subject_id=request.subject_id):
        shred_subject(subject_id=package.key_id)
        package.delete()
        count += 1
    PortalLink.objects.filter(subject_id=request.subject_id).delete()
    return count


def _step_shred(request: DataSubjectRequest, actor: Actor) -> int:
    from privacy.crypto.services import subject_shred

    return sum(
        int(subject_shred(actor=actor, subject_id=pid))
        for pid in [request.subject_id, *_absorbed_ids(request.subject_id)]
    )


def _step_finish(request: DataSubjectRequest, actor: Actor, counts: dict[str, int], partial: bool) -> int:
    if not partial:
        Profile.objects.filter(pk=request.subject_id).update(status=ProfileStatus.ERASED)
    audit_record(
        actor=actor,
        action=AuditAction.PROFILE_ERASE,
        subject_id=request.subject_id,
        object_type="dsar",
        object_id=request.pk,
        details={
            "receipt": True,
            "partial": partial,
            "scope": {k: v for k, v in (request.options or {}).items() if k in ("event_names", "channel")},
            "counts": counts,
            "kept_under_legal_obligation": [e["data"] for e in LEGAL_EXCEPTIONS] if not partial else [],
        },
    )
    return 1


def subject_erase(*, actor: Actor, request_id: int) -> dict[str, Any]:
    """Run (or resume) the erasure of an in-progress erasure request; returns the receipt
    summary (counts per step, partial or not, the legal exceptions)."""
    actor.require_role(Role.COMPLIANCE, Role.STEWARD, Role.SYSTEM)
    request = DataSubjectRequest.objects.get(pk=request_id)
    options = request.options or {}
    partial = bool(options.get("event_names") or options.get("channel"))
    steps = PARTIAL_STEPS if partial else FULL_STEPS
    for name in steps:
        with transaction.atomic():
            request = DataSubjectRequest.objects.select_for_update().get(pk=request_id)
            progress = dict(request.progress or {})
            done = list(progress.get("done", []))
            counts = dict(progress.get("counts", {}))
            if name in done:
                continue
            step = globals()[f"_step_{name}"]
            if name == "shred":
                counts[name] = step(request, actor)
            elif name == "finish":
                counts[name] = step(request, actor, {k: v for k, v in counts.items() if k != "finish"}, partial)
            else:
                counts[name] = step(request)
            done.append(name)
            request.progress = {"done": done, "counts": counts}
            request.save(update_fields=["progress", "updated_at"])
    counts = {k: v for k, v in request.progress.get("counts", {}).items() if k != "finish"}
    return {
        "erased": counts,
        "partial": partial,
        "kept_under_legal_obligation": [] if partial else LEGAL_EXCEPTIONS,
    }
