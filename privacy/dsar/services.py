"""Receiving data-subject requests. Working them is a later feature built on this model."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Profile, ProfileStatus
from privacy.audit import AuditAction, audit_record
from privacy.dsar.deadlines import due_at_for
from privacy.dsar.models import DataSubjectRequest, DsarChannel, DsarJurisdiction, DsarType, VerificationMethod


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
