"""Compliance operations services: recipients, export gating, disclosures, breaches, assessments.

Every change is audited as the last step of its transaction. Nothing here stores personal data:
recipients and breaches describe organisations and incidents; disclosures hold pseudonymous ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cdp.actor import Actor, PermissionDenied, Role
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.compliance.models import (
    AssessmentStatus,
    Breach,
    BreachStatus,
    Disclosure,
    ImpactAssessment,
    Recipient,
    RecipientRole,
    TransferMechanism,
)

STAFF_ROLES = (Role.COMPLIANCE, Role.ADMIN)
THIRD_PARTY_PURPOSE = "third_party_sharing"
CROSS_BORDER_PURPOSE = "cross_border_transfer"
RECIPIENT_FIELDS = ("name", "contact", "role", "country", "transfer_mechanism", "purposes", "active")


class ComplianceError(ValueError):
    """Bad input for a compliance operation; `path` is the JSON path of the bad field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --- recipients register -------------------------------------------------------------------------


def recipient_is_abroad(recipient: Recipient) -> bool:
    """A recipient outside the platform's home countries (CDP_HOME_COUNTRIES) is a cross-border one."""
    return recipient.country.upper() not in {c.upper() for c in settings.CDP_HOME_COUNTRIES}


def _recipient_validate(data: dict[str, Any]) -> None:
    from consent.models import Purpose

    if data.get("role") not in RecipientRole.values:
        raise ComplianceError("$.role", f"must be one of: {', '.join(RecipientRole.values)}")
    country = data.get("country") or ""
    if len(country) != 2 or not country.isalpha():
        raise ComplianceError("$.country", "must be an ISO 3166-1 alpha-2 code")
    data["country"] = country.upper()
    mechanism = data.get("transfer_mechanism", "")
    if mechanism not in TransferMechanism.values:
        raise ComplianceError("$.transfer_mechanism", "unknown transfer mechanism")
    purposes = data.get("purposes") or []
    known = set(Purpose.objects.filter(code__in=purposes).values_list("code", flat=True))
    unknown = sorted(set(purposes) - known)
    if unknown:
        raise ComplianceError("$.purposes", f"unknown purposes: {', '.join(unknown)}")
    probe = Recipient(country=data["country"])
    if recipient_is_abroad(probe) and not mechanism:
        raise ComplianceError("$.transfer_mechanism", "a recipient abroad needs a transfer mechanism (PIPL Art. 38)")


def recipient_create(*, actor: Actor, **data: Any) -> Recipient:
    """Register a recipient (GDPR Art. 30(1)(d)); exports may only go to registered ones."""
    actor.require_role(*STAFF_ROLES)
    data = {k: v for k, v in data.items() if k in RECIPIENT_FIELDS}
    _recipient_validate(data)
    if Recipient.objects.filter(name=data["name"]).exists():
        raise ComplianceError("$.name", "a recipient with this name exists")
    with transaction.atomic():
        recipient = Recipient.objects.create(**data)
        audit_record(
            actor=actor,
            action=AuditAction.RECIPIENT_CHANGE,
            object_type="recipient",
            object_id=recipient.pk,
            details={"op": "create", "role": recipient.role, "country": recipient.country},
        )
    return recipient


def recipient_update(*, actor: Actor, recipient_id: int, **changes: Any) -> Recipient:
    """Change a recipient's entry; the audit entry lists the fields changed."""
    actor.require_role(*STAFF_ROLES)
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().get(pk=recipient_id)
        data = {f: getattr(recipient, f) for f in RECIPIENT_FIELDS}
        changed = sorted(k for k, v in changes.items() if k in RECIPIENT_FIELDS and data[k] != v)
        data.update({k: changes[k] for k in changed})
        _recipient_validate(data)
        for key in changed:
            setattr(recipient, key, data[key])
        recipient.save()
        audit_record(
            actor=actor,
            action=AuditAction.RECIPIENT_CHANGE,
            object_type="recipient",
            object_id=recipient.pk,
            details={"op": "update", "fields": changed},
        )
    return recipient


def recipient_deactivate(*, actor: Actor, recipient_id: int) -> Recipient:
    """Retire a recipient. Kept, not deleted: disclosures to it must stay traceable (GDPR Art. 19)."""
    return recipient_update(actor=actor, recipient_id=recipient_id, active=False)


def recipient_for_export(*, actor: Actor, name: str, purpose: str, export_ref: str = "") -> Recipient:
    """The registered, active recipient allowed for the purpose; otherwise refuse (audited)."""
    recipient = Recipient.objects.filter(name=name, active=True).first() if name else None
    reason = ""
    if recipient is None:
        reason = "unregistered_recipient"
    elif purpose not in recipient.purposes:
        reason = "purpose_not_allowed"
    elif recipient_is_abroad(recipient) and not recipient.transfer_mechanism:
        reason = "no_transfer_mechanism"
    if reason:
        audit_record(
            actor=actor,
            action=AuditAction.EXPORT_REFUSED,
            outcome=Outcome.DENIED,
            purpose=purpose,
            object_type="segment",
            object_id=export_ref,
            details={"reason": reason, "recipient_id": recipient.pk if recipient else None},
        )
        raise ComplianceError("$.recipient_name", reason.replace("_", " "))
    return recipient


def recipient_required_purposes(recipient: Recipient) -> list[str]:
    """Separate consents the people exported must hold: PIPL Art. 23 (another handler), Art. 39 (abroad)."""
    needed = []
    if recipient.role == RecipientRole.HANDLER:
        needed.append(THIRD_PARTY_PURPOSE)
    if recipient_is_abroad(recipient):
        needed.append(CROSS_BORDER_PURPOSE)
    return needed


def profiles_allowed_for_recipient(queryset: QuerySet, recipient: Recipient) -> QuerySet:
    """Narrow a Profile queryset to people whose separate consents cover this recipient."""
    from consent.enforcement import profiles_consented_for

    for purpose in recipient_required_purposes(recipient):
        queryset = profiles_consented_for(queryset, purpose=purpose)
    return queryset


def disclosures_record(*, recipient: Recipient, export_id: uuid.UUID, purpose: str, subject_ids: list) -> int:
    """Remember who was given to whom (called inside the export build's transaction)."""
    Disclosure.objects.bulk_create(
        [Disclosure(recipient=recipient, subject_id=s, export_id=export_id, purpose=purpose) for s in subject_ids],
        ignore_conflicts=True,
        batch_size=2000,
    )
    return len(subject_ids)


def recipients_of_subject(subject_id: uuid.UUID | str) -> list[dict]:
    """Recipients that received this person's data, for a rectification/erasure receipt (GDPR Art. 19)."""
    rows = (
        Disclosure.objects.filter(subject_id=subject_id)
        .values("recipient_id", "recipient__name", "recipient__contact")
        .distinct()
        .order_by("recipient__name")
    )
    return [
        {"recipient_id": r["recipient_id"], "name": r["recipient__name"], "contact": r["recipient__contact"]}
        for r in rows
    ]


def recipient_notification_confirm(*, actor: Actor, request_id: int, recipient_id: int, method: str = "manual") -> dict:
    """Record that a recipient was told of a request's rectification/erasure/restriction (GDPR Art. 19)."""
    from privacy.dsar.models import DataSubjectRequest

    actor.require_role(*STAFF_ROLES, Role.STEWARD)
    with transaction.atomic():
        request = DataSubjectRequest.objects.select_for_update().get(pk=request_id)
        notices = recipient_notices(request)
        if not any(n["recipient_id"] == recipient_id for n in notices):
            raise ComplianceError("$.recipient_id", "this recipient did not receive the person's data")
        result = dict(request.result or {})
        confirmed = dict(result.get("recipient_notifications") or {})
        confirmed[str(recipient_id)] = {"notified_at": timezone.now().isoformat(), "method": method}
        result["recipient_notifications"] = confirmed
        request.result = result
        request.save(update_fields=["result"])
        audit_record(
            actor=actor,
            action=AuditAction.RECIPIENT_NOTIFY,
            subject_id=request.subject_id,
            object_type="dsar",
            object_id=request.pk,
            details={"recipient_id": recipient_id, "method": method},
        )
    return {"request_id": request.pk, "recipients": recipient_notices(request)}


def recipient_notices(request) -> list[dict]:
    """The request's recipients with their notification state (part of the receipt)."""
    confirmed = (request.result or {}).get("recipient_notifications") or {}
    out = []
    for row in recipients_of_subject(request.subject_id) if request.subject_id else []:
        state = confirmed.get(str(row["recipient_id"]))
        out.append({**row, "notified": bool(state), "notified_at": state["notified_at"] if state else None})
    return out


# --- breach register ------------------------------------------------------------------------------


def breach_estimate_affected(*, actor_id: str = "", start: datetime | None = None, end: datetime | None = None) -> int:
    """Distinct subjects in the audit trail touched by the named actor and/or in the window."""
    from privacy.audit.models import AuditEntry

    if not actor_id and not (start and end):
        return 0
    entries = AuditEntry.objects.filter(subject_id__isnull=False)
    if actor_id:
        entries = entries.filter(actor_id=actor_id)
    if start:
        entries = entries.filter(occurred_at__gte=start)
    if end:
        entries = entries.filter(occurred_at__lte=end)
    return entries.values("subject_id").distinct().count()


BREACH_FIELDS = (
    "title",
    "discovered_at",
    "data_categories",
    "actor_id",
    "window_start",
    "window_end",
    "cause",
    "measures",
    "individuals_must_be_told",
)


def breach_create(*, actor: Actor, **data: Any) -> Breach:
    """Register a breach; its authority deadline is discovery + CDP_BREACH_NOTIFY_HOURS (GDPR Art. 33: 72 h)."""
    actor.require_role(*STAFF_ROLES)
    data = {k: v for k, v in data.items() if k in BREACH_FIELDS}
    if not data.get("title"):
        raise ComplianceError("$.title", "required")
    discovered = data.get("discovered_at") or timezone.now()
    if discovered > timezone.now():
        raise ComplianceError("$.discovered_at", "cannot be in the future")
    start, end = data.get("window_start"), data.get("window_end")
    if start and end and start > end:
        raise ComplianceError("$.window_end", "must be after window_start")
    data["discovered_at"] = discovered
    with transaction.atomic():
        breach = Breach.objects.create(
            **data,
            deadline_at=discovered + timedelta(hours=settings.CDP_BREACH_NOTIFY_HOURS),
            affected_estimate=breach_estimate_affected(actor_id=data.get("actor_id", ""), start=start, end=end),
            created_by=actor.actor_id,
        )
        audit_record(
            actor=actor,
            action=AuditAction.BREACH_CREATE,
            object_type="breach",
            object_id=breach.pk,
            details={"affected_estimate": breach.affected_estimate, "categories": breach.data_categories},
        )
    return breach


def breach_update(*, actor: Actor, breach_id: int, **changes: Any) -> Breach:
    """Record progress: cause, measures, notification of the authority and of individuals, closure."""
    actor.require_role(*STAFF_ROLES)
    allowed = {
        "cause",
        "measures",
        "individuals_must_be_told",
        "data_categories",
        "status",
        "notified_at",
        "individuals_notified_at",
    }
    with transaction.atomic():
        breach = Breach.objects.select_for_update().get(pk=breach_id)
        changed = sorted(k for k, v in changes.items() if k in allowed and getattr(breach, k) != v)
        if "status" in changed and changes["status"] not in BreachStatus.values:
            raise ComplianceError("$.status", "unknown status")
        for key in changed:
            setattr(breach, key, changes[key])
        if breach.status == BreachStatus.NOTIFIED and breach.notified_at is None:
            breach.notified_at = timezone.now()
            changed.append("notified_at")
        breach.save()
        audit_record(
            actor=actor,
            action=AuditAction.BREACH_UPDATE,
            object_type="breach",
            object_id=breach.pk,
            details={"fields": changed, "status": breach.status},
        )
    return breach


def breach_hours_left(breach: Breach, now: datetime | None = None) -> float:
    return round(((breach.deadline_at - (now or timezone.now())).total_seconds()) / 3600, 1)


def breaches_flag_deadlines(*, actor: Actor, now: datetime | None = None) -> dict:
    """Flag open breaches near (CDP_BREACH_NEAR_HOURS) or past their deadline (beat task). Idempotent:
    a breach is flagged (and audited) once per level."""
    now = now or timezone.now()
    near_at = now + timedelta(hours=settings.CDP_BREACH_NEAR_HOURS)
    counts = {"near": 0, "overdue": 0}
    with transaction.atomic():
        for breach in Breach.objects.select_for_update().filter(status=BreachStatus.OPEN, notified_at__isnull=True):
            level = "overdue" if breach.deadline_at <= now else ("near" if breach.deadline_at <= near_at else "")
            if not level or breach.deadline_flag == level:
                continue
            breach.deadline_flag = level
            breach.save(update_fields=["deadline_flag"])
            counts[level] += 1
            audit_record(
                actor=actor,
                action=AuditAction.BREACH_DEADLINE,
                outcome=Outcome.ERROR if level == "overdue" else Outcome.OK,
                object_type="breach",
                object_id=breach.pk,
                details={"flag": level, "hours_left": breach_hours_left(breach, now)},
            )
    return counts


def breach_notification_form(*, actor: Actor, breach_id: int) -> dict:
    """The breach in the shape of an authority notification (GDPR Art. 33(3), PIPL Art. 57)."""
    actor.require_role(*STAFF_ROLES)
    breach = Breach.objects.get(pk=breach_id)
    reference_time = breach.notified_at or timezone.now()
    late = reference_time > breach.deadline_at
    form = {
        "reference": f"breach-{breach.pk}",
        "controller": settings.CDP_CONTROLLER_NAME,
        "nature": {"title": breach.title, "data_categories": breach.data_categories, "cause": breach.cause},
        "approximate_number_of_data_subjects": breach.affected_estimate,
        "discovered_at": breach.discovered_at.isoformat(),
        "deadline_at": breach.deadline_at.isoformat(),
        "late": late,
        "measures_taken_or_proposed": breach.measures,
        "likely_consequences_and_individual_notice": {
            "individuals_must_be_told": breach.individuals_must_be_told,
            "individuals_notified_at": breach.individuals_notified_at.isoformat()
            if breach.individuals_notified_at
            else None,
        },
        "contact": settings.CDP_PRIVACY_CONTACT,
        "status": breach.status,
    }
    audit_record(actor=actor, action=AuditAction.BREACH_EXPORT, object_type="breach", object_id=breach.pk)
    return form


# --- impact assessments -----------------------------------------------------------------------------


def purpose_needs_assessment(purpose) -> bool:
    """PIPL Art. 55: sensitive data, automated decisions / personalised marketing, providing to others,
    cross-border. Separate-consent kinds cover the first, third and fourth; personalised marketing is
    the `personalisation` data category or a purpose code listed in CDP_ASSESSMENT_PURPOSES."""
    return (
        bool(purpose.separate_consent)
        or purpose.code in settings.CDP_ASSESSMENT_PURPOSES
        or ("personalisation" in (purpose.data_categories or []))
    )


def assessment_create(*, actor: Actor, purpose: str, content: dict) -> ImpactAssessment:
    """Record an assessment (draft); kept at least three years (PIPL Art. 56)."""
    from consent.models import Purpose

    actor.require_role(*STAFF_ROLES)
    if not Purpose.objects.filter(code=purpose).exists():
        raise ComplianceError("$.purpose", "unknown purpose")
    if not isinstance(content, dict) or not content:
        raise ComplianceError("$.content", "must be a non-empty object")
    today = timezone.now().date()
    with transaction.atomic():
        assessment = ImpactAssessment.objects.create(
            purpose=purpose,
            content=content,
            created_by=actor.actor_id,
            retain_until=date(today.year + settings.CDP_ASSESSMENT_RETENTION_YEARS, today.month, min(today.day, 28)),
        )
        audit_record(
            actor=actor,
            action=AuditAction.ASSESSMENT_CHANGE,
            purpose=purpose,
            object_type="assessment",
            object_id=assessment.pk,
            details={"op": "create"},
        )
    return assessment


def assessment_approve(*, actor: Actor, assessment_id: int) -> ImpactAssessment:
    """Approve an assessment; the approver must not be its author (four eyes)."""
    actor.require_role(*STAFF_ROLES)
    with transaction.atomic():
        assessment = ImpactAssessment.objects.select_for_update().get(pk=assessment_id)
        if assessment.created_by == actor.actor_id:
            raise PermissionDenied("the author cannot approve their own assessment", code="four_eyes")
        if assessment.status != AssessmentStatus.APPROVED:
            assessment.status = AssessmentStatus.APPROVED
            assessment.approved_by = actor.actor_id
            assessment.approved_at = timezone.now()
            assessment.save()
        audit_record(
            actor=actor,
            action=AuditAction.ASSESSMENT_CHANGE,
            purpose=assessment.purpose,
            object_type="assessment",
            object_id=assessment.pk,
            details={"op": "approve"},
        )
    return assessment


@dataclass
class ActivationRefused(Exception):
    purpose: str

    def __str__(self) -> str:
        return f"purpose '{self.purpose}' needs an approved impact assessment (PIPL Art. 55, GDPR Art. 35)"


def purpose_activate(*, actor: Actor, purpose: str):
    """Activate a purpose; one that needs an impact assessment is refused without an approved one."""
    from consent.models import Purpose

    actor.require_role(*STAFF_ROLES)
    with transaction.atomic():
        obj = Purpose.objects.select_for_update().get(code=purpose)
        if (
            purpose_needs_assessment(obj)
            and not ImpactAssessment.objects.filter(purpose=purpose, status=AssessmentStatus.APPROVED).exists()
        ):
            audit_record(
                actor=actor,
                action=AuditAction.PURPOSE_ACTIVATE,
                outcome=Outcome.DENIED,
                purpose=purpose,
                object_type="purpose",
                object_id=obj.pk,
                details={"reason": "assessment_required"},
            )
            refused = ActivationRefused(purpose)
        else:
            refused = None
            if not obj.active:
                obj.active = True
                obj.save(update_fields=["active"])
            audit_record(
                actor=actor,
                action=AuditAction.PURPOSE_ACTIVATE,
                purpose=purpose,
                object_type="purpose",
                object_id=obj.pk,
            )
    if refused:
        raise refused
    return obj


def disclosures_export(subject_id: uuid.UUID) -> list[dict]:
    """DSAR provider (access package, GDPR Art. 15(1)(c)): which recipients got the person's data, when.

    No erase function on purpose: the record of a disclosure is what lets the controller tell the
    recipient of the erasure (GDPR Art. 19) and prove it later; it holds only the pseudonymous id."""
    rows = Disclosure.objects.filter(subject_id=subject_id).select_related("recipient").order_by("disclosed_at")
    return [
        {
            "recipient": d.recipient.name,
            "role": d.recipient.role,
            "country": d.recipient.country,
            "purpose": d.purpose,
            "disclosed_at": d.disclosed_at.isoformat(),
        }
        for d in rows
    ]


DEMO_RECIPIENTS = (
    {
        "name": "SMS gateway (demo)",
        "contact": "ops@sms-gateway.example",
        "role": RecipientRole.PROCESSOR,
        "country": "CN",
        "transfer_mechanism": "",
        "purposes": ["marketing_sms"],
    },
    {
        "name": "Mail house (demo)",
        "contact": "privacy@mailhouse.example",
        "role": RecipientRole.PROCESSOR,
        "country": "CN",
        "transfer_mechanism": "",
        "purposes": ["marketing_email"],
    },
    {
        "name": "Group HQ EU (demo)",
        "contact": "dpo@group-hq.example.eu",
        "role": RecipientRole.HANDLER,
        "country": "DE",
        "transfer_mechanism": TransferMechanism.STANDARD_CONTRACT,
        "purposes": ["cross_border_transfer", "third_party_sharing"],
    },
)


def seed_recipients(**_: object) -> str:
    """seed_demo step: a small recipients register (idempotent: by name)."""
    from consent.models import Purpose

    known = set(Purpose.objects.values_list("code", flat=True))
    created = 0
    for spec in DEMO_RECIPIENTS:
        spec = {**spec, "purposes": [p for p in spec["purposes"] if p in known]}
        _, was_created = Recipient.objects.get_or_create(name=spec["name"], defaults=spec)
        created += int(was_created)
    return f"{created} added, {len(DEMO_RECIPIENTS) - created} already there"
