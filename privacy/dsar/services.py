"""Receiving data-subject requests. Working them is a later feature built on this model."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Profile, ProfileStatus
from privacy.audit import AuditAction, audit_record
from privacy.dsar.deadlines import due_at_for
from privacy.dsar.models import (
    DataSubjectRequest,
    DsarChannel,
    DsarJurisdiction,
    DsarStatus,
    DsarType,
    VerificationMethod,
)


class DsarError(ValueError):
    """The request cannot be received as given (unknown subject, bad type or jurisdiction)."""


def dsar_create(
    *,
    actor: Actor,
    subject_id: uuid.UUID | str,
    request_type: str,
    jurisdiction: str,
    channel: str,
    verification_method: str = "",
    received_at: datetime | None = None,
) -> DataSubjectRequest:
    """Record a request as received, with its deadline, and audit it (dsar.create).

    Why the actor check: only the person themselves (a portal session for that same subject)
    or staff in the steward/compliance roles may file a request; a portal actor may file only
    for the subject their session belongs to.
    """
    if request_type not in DsarType.values:
        raise DsarError(f"unknown request type {request_type!r}")
    if jurisdiction not in DsarJurisdiction.values:
        raise DsarError(f"unknown jurisdiction {jurisdiction!r}")
    if channel not in DsarChannel.values:
        raise DsarError(f"unknown channel {channel!r}")
    if verification_method not in VerificationMethod.values:
        raise DsarError(f"unknown verification method {verification_method!r}")
    subject_uuid = uuid.UUID(str(subject_id))
    if actor.kind == ActorKind.PORTAL:
        if actor.role != Role.SUBJECT or actor.actor_id != f"subject:{subject_uuid}":
            raise PermissionDenied("a portal session may file requests only for its own subject")
    else:
        actor.require_role(Role.STEWARD, Role.COMPLIANCE, Role.ADMIN, Role.SYSTEM)
    received = received_at or timezone.now()
    with transaction.atomic():
        subject = Profile.objects.filter(pk=subject_uuid).first()
        if subject is None or subject.status == ProfileStatus.MERGED:
            raise DsarError("no such subject")
        request = DataSubjectRequest.objects.create(
            type=request_type,
            jurisdiction=jurisdiction,
            channel=channel,
            subject=subject,
            verification_method=verification_method,
            verified_at=None,
            received_at=received,
            due_at=due_at_for(jurisdiction=jurisdiction, received_at=received),
            created_by=actor.actor_id,
        )
        audit_record(
            actor=actor,
            action=AuditAction.DSAR_CREATE,
            subject_id=subject.pk,
            object_type="dsar",
            object_id=request.pk,
            details={"type": request_type, "jurisdiction": jurisdiction, "channel": channel},
        )
    return request


# --- Working the request (issue 9) --------------------------------------------------------------

DSAR_PURPOSE = "data_subject_rights"
WORK_ROLES = (Role.COMPLIANCE, Role.STEWARD, Role.ADMIN, Role.SYSTEM)


class DsarNotFound(LookupError):
    """No such request."""


class DsarTransitionError(ValueError):
    """The transition is invalid as asked (missing reason or method, bad options)."""


class DsarStateError(DsarTransitionError):
    """The transition is not allowed from the request's current state (API: 409)."""


# action -> (allowed from, to). `extend`, `assign` keep the status.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "verify": ((DsarStatus.RECEIVED,), DsarStatus.VERIFIED),
    "start": ((DsarStatus.VERIFIED,), DsarStatus.IN_PROGRESS),
    "complete": ((DsarStatus.IN_PROGRESS,), DsarStatus.COMPLETED),
    "reject": ((DsarStatus.RECEIVED, DsarStatus.VERIFIED, DsarStatus.IN_PROGRESS), DsarStatus.REJECTED),
    "extend": ((DsarStatus.RECEIVED, DsarStatus.VERIFIED, DsarStatus.IN_PROGRESS), None),
    "assign": ((DsarStatus.RECEIVED, DsarStatus.VERIFIED, DsarStatus.IN_PROGRESS), None),
    "lift": ((DsarStatus.COMPLETED,), None),
}
ASYNC_TYPES = (DsarType.ACCESS, DsarType.PORTABILITY, DsarType.ERASURE)


def _work_actor(actor: Actor) -> Actor:
    actor.require_role(*WORK_ROLES)
    return actor if actor.purpose else actor.with_purpose(DSAR_PURPOSE)


def dsar_resolve_subject(*, id_type: str, value: str) -> Profile:
    """The live profile an identifier points to, found through its blind index only (the
    plaintext is normalised, hashed and forgotten). Raises DsarError when nobody matches."""
    from identity.models import Identifier
    from identity.normalize import NormalizationError, normalize_identifier
    from identity.registry import identifier_types
    from privacy.crypto import blind_index

    if id_type not in identifier_types():
        raise DsarError("unknown identifier type")
    try:
        canonical = normalize_identifier(id_type, value)
    except NormalizationError as exc:
        raise DsarError("invalid identifier value") from exc
    ident = (
        Identifier.objects.select_related("profile")
        .filter(id_type=id_type, blind_index=blind_index(id_type=id_type, value=canonical))
        .first()
    )
    if ident is None:
        raise DsarError("no subject matches this identifier")
    profile = ident.profile
    hops = 0
    while profile.status == ProfileStatus.MERGED and profile.merged_into_id and hops < 64:
        profile = Profile.objects.get(pk=profile.merged_into_id)
        hops += 1
    if profile.status != ProfileStatus.ACTIVE:
        raise DsarError("no subject matches this identifier")
    return profile


def _get_locked(request_id: int) -> DataSubjectRequest:
    request = DataSubjectRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise DsarNotFound("no such request")
    return request


def _audit_transition(actor: Actor, request: DataSubjectRequest, action: str, before: str, **details) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.DSAR_TRANSITION,
        subject_id=request.subject_id,
        object_type="dsar",
        object_id=request.pk,
        details={"action": action, "from": before, "to": request.status, "type": request.type, **details},
    )


def dsar_transition(
    *,
    actor: Actor,
    request_id: int,
    action: str,
    reason: str = "",
    verification_method: str = "",
    assignee: str | None = None,
    options: dict | None = None,
    traits: dict | None = None,
) -> DataSubjectRequest:
    """Move a request through received -> verified -> in_progress -> completed (or rejected),
    extend a GDPR deadline, assign it, or lift a completed restriction/objection; each step is
    audited (`dsar.transition`) in the same transaction.

    Why `start` does the work: restriction, objection and rectification take effect at once
    (enforcement reads them on the next call); access, portability and erasure are queued to a
    Celery task after commit, which completes the request when it finishes. `traits` (for a
    rectification) are applied and never stored on the request.
    """
    actor = _work_actor(actor)
    if action not in TRANSITIONS:
        raise DsarTransitionError(f"unknown action {action!r}")
    allowed_from, target = TRANSITIONS[action]
    with transaction.atomic():
        request = _get_locked(request_id)
        before = request.status
        if request.status not in allowed_from:
            raise DsarStateError(f"cannot {action} a request that is {request.status}")
        details: dict = {}
        now = timezone.now()
        if action == "verify":
            if verification_method not in VerificationMethod.values or not verification_method:
                raise DsarTransitionError("a verification method is required")
            request.verification_method = verification_method
            request.verified_at = now
            details["verification_method"] = verification_method
        elif action == "reject":
            if not reason.strip():
                raise DsarTransitionError("a rejection needs a reason the person is told (PIPL Art. 50)")
            request.reason = reason.strip()
            request.completed_at = now
        elif action == "extend":
            if request.jurisdiction != DsarJurisdiction.GDPR:
                raise DsarTransitionError("only GDPR deadlines can be extended (Art. 12(3))")
            if request.extended_at is not None:
                raise DsarStateError("the deadline was already extended")
            if not reason.strip():
                raise DsarTransitionError("an extension needs a reason the person is told")
            from privacy.dsar.deadlines import add_months

            request.due_at = add_months(request.due_at, int(settings.CDP_DSAR_EXTENSION_MONTHS))
            request.extended_at = now
            request.extension_reason = reason.strip()
            request.deadline_flag = ""
            details["due_at"] = request.due_at.isoformat()
        elif action == "assign":
            request.assignee = (assignee or actor.actor_id)[:128]
            details["assignee"] = request.assignee
        elif action == "start":
            _check_options(request.type, options or {})
            request.options = options or {}
            if request.assignee == "":
                request.assignee = actor.actor_id[:128]
        elif action == "complete":
            if request.type in ASYNC_TYPES and not _work_done(request):
                raise DsarStateError("the queued work of this request has not finished yet")
            request.completed_at = now
        elif action == "lift":
            if request.type not in (DsarType.RESTRICTION, DsarType.OBJECTION):
                raise DsarTransitionError("only restrictions and objections can be lifted")
            lifted = _lift_restriction(request)
            request.result = {**request.result, "lifted": lifted}
            details["lifted"] = lifted
        if target is not None:
            request.status = target
        if action == "complete" or action == "reject":
            request.deadline_flag = ""
        request.save()
        _audit_transition(actor, request, action, before, **details)
        if action == "start":
            if request.type in ASYNC_TYPES:
                transaction.on_commit(lambda: _enqueue(request.pk))
            else:
                _work_now(actor, request, traits=traits)
    request.refresh_from_db()
    return request


def _work_done(request: DataSubjectRequest) -> bool:
    """Whether the queued work finished (so a manual `complete` cannot skip an erasure)."""
    from privacy.dsar.models import DsarPackage

    if request.type == DsarType.ERASURE:
        return "finish" in (request.progress or {}).get("done", [])
    return DsarPackage.objects.filter(request=request).exists()


def _enqueue(request_id: int) -> None:
    from privacy.tasks import dsar_process

    dsar_process.delay(request_id)


def _check_options(request_type: str, options: dict) -> None:
    allowed = {
        DsarType.ERASURE: {"event_names", "channel"},
        DsarType.RESTRICTION: {"purpose"},
        DsarType.OBJECTION: {"purpose"},
    }.get(request_type, set())
    unknown = set(options) - allowed
    if unknown:
        raise DsarTransitionError(f"unknown options for {request_type}: {', '.join(sorted(unknown))}")
    if "event_names" in options and (
        not isinstance(options["event_names"], list) or not all(isinstance(n, str) for n in options["event_names"])
    ):
        raise DsarTransitionError("event_names must be a list of event names")
    for key in ("channel", "purpose"):
        if key in options and not isinstance(options[key], str):
            raise DsarTransitionError(f"{key} must be a string")
    if options.get("purpose"):
        from consent.models import Purpose

        if not Purpose.objects.filter(code=options["purpose"]).exists():
            raise DsarTransitionError("unknown purpose")


def _complete(actor: Actor, request: DataSubjectRequest, result: dict) -> None:
    before = request.status
    request.status = DsarStatus.COMPLETED
    request.completed_at = timezone.now()
    request.deadline_flag = ""
    if request.type in (DsarType.ERASURE, DsarType.RECTIFICATION, DsarType.RESTRICTION) and request.subject_id:
        # issue 10 (GDPR Art. 19): the receipt lists the recipients that had the person's data.
        from privacy.compliance.services import recipient_notices

        result = {**result, "recipients_to_notify": recipient_notices(request)}
    request.result = {**request.result, **result}
    request.save()
    _audit_transition(actor, request, "complete", before)


def _work_now(actor: Actor, request: DataSubjectRequest, *, traits: dict | None) -> None:
    """Restriction, objection, rectification: done inside the `start` transaction."""
    from consent.models import ProcessingRestriction, Purpose

    if request.type in (DsarType.RESTRICTION, DsarType.OBJECTION):
        purpose = Purpose.objects.filter(code=request.options.get("purpose")).first() if request.options else None
        restriction = ProcessingRestriction.objects.create(subject=request.subject, kind=request.type, purpose=purpose)
        _complete(actor, request, {"restriction_id": restriction.pk, "purpose": purpose.code if purpose else "*"})
    elif request.type == DsarType.RECTIFICATION:
        from privacy.dsar.rectify import profile_rectify

        if not traits or not isinstance(traits, dict):
            raise DsarTransitionError("a rectification needs the corrected traits")
        changed = profile_rectify(actor=actor, profile_id=request.subject_id, traits=traits)
        _complete(actor, request, {"traits_changed": changed})


def _lift_restriction(request: DataSubjectRequest) -> int:
    from consent.models import ProcessingRestriction

    rid = request.result.get("restriction_id")
    return ProcessingRestriction.objects.filter(pk=rid, active=True).update(active=False, lifted_at=timezone.now())


def dsar_process(*, actor: Actor, request_id: int) -> DataSubjectRequest:
    """The queued work of an in-progress access, portability or erasure request; completes it.

    Idempotent: a completed request is returned unchanged; an erasure resumes from its
    recorded progress; a package is rebuilt only if none exists.
    """
    actor = _work_actor(actor)
    request = DataSubjectRequest.objects.filter(pk=request_id).first()
    if request is None:
        raise DsarNotFound("no such request")
    if request.status != DsarStatus.IN_PROGRESS:
        return request
    if request.type in (DsarType.ACCESS, DsarType.PORTABILITY):
        from privacy.dsar.package import dsar_package_build

        package = dsar_package_build(actor=actor, request_id=request.pk)
        result = {"package_sha256": package.sha256, "package_bytes": package.size}
    elif request.type == DsarType.ERASURE:
        from privacy.dsar.erasure import subject_erase

        result = subject_erase(actor=actor, request_id=request.pk)
    else:
        raise DsarTransitionError("nothing is queued for this request type")
    with transaction.atomic():
        request = _get_locked(request_id)
        if request.status == DsarStatus.IN_PROGRESS:
            _complete(actor, request, result)
    return request


def dsar_deadlines_flag(*, actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Flag open requests close to their deadline ('near', within CDP_DSAR_WARN_DAYS) or past it
    ('overdue'); each change of flag is audited (`dsar.deadline`). Idempotent: an unchanged flag
    is not audited again. Returns counts per flag."""
    from datetime import timedelta

    actor = _work_actor(actor)
    moment = now or timezone.now()
    warn = timedelta(days=int(settings.CDP_DSAR_WARN_DAYS))
    counts = {"near": 0, "overdue": 0}
    with transaction.atomic():
        for request in DataSubjectRequest.objects.select_for_update().filter(
            status__in=DataSubjectRequest.OPEN_STATUSES
        ):
            flag = "overdue" if request.due_at <= moment else "near" if request.due_at - moment <= warn else ""
            if flag:
                counts[flag] += 1
            if flag == request.deadline_flag:
                continue
            request.deadline_flag = flag
            request.save(update_fields=["deadline_flag", "updated_at"])
            audit_record(
                actor=actor,
                action=AuditAction.DSAR_DEADLINE,
                subject_id=request.subject_id,
                object_type="dsar",
                object_id=request.pk,
                details={"flag": flag or "cleared", "due_at": request.due_at.isoformat(), "status": request.status},
            )
    return counts


def dsar_resume_stalled(*, actor: Actor, older_than_minutes: int = 15) -> list[int]:
    """Queue again the in-progress access, portability and erasure requests untouched for
    `older_than_minutes` (a worker died, a message was lost). Safe: `dsar_process` resumes
    from the recorded progress and is idempotent. Returns the request ids queued."""
    from datetime import timedelta

    actor = _work_actor(actor)
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    ids = list(
        DataSubjectRequest.objects.filter(
            status=DsarStatus.IN_PROGRESS, type__in=ASYNC_TYPES, updated_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for request_id in ids:
        transaction.on_commit(lambda rid=request_id: _enqueue(rid))
    return ids


def days_left(request: DataSubjectRequest, *, now: datetime | None = None) -> int:
    """Whole days until the deadline (negative: overdue), counted on calendar days."""
    moment = now or timezone.now()
    return (request.due_at.date() - moment.date()).days
