"""Consent services: record grants and withdrawals with evidence, publish notices, issue and
open portal links, read and export a subject's consent.

Every change appends to the ledger, updates the derived state in the same transaction, and
writes its audit entry as the last step. Errors carry codes and rule names, never personal data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Profile, ProfileStatus
from consent import selectors
from consent.models import (
    GRANTING_EVENTS,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    ConsentState,
    LegalBasis,
    PolicyVersion,
    PortalLink,
    Purpose,
)
from consent.seed import seed_purposes
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.crypto import DecryptionError, KeyShreddedError, keyed_hash, open_sealed

# Roles that may record consent on a person's behalf (the person acted elsewhere: a cookie
# banner, a POS signature, a call) and read it.
RECORDING_ROLES = (Role.STEWARD, Role.COMPLIANCE, Role.ADMIN, Role.SOURCE, Role.SYSTEM)
READING_ROLES = (Role.STEWARD, Role.COMPLIANCE, Role.ADMIN)
# Keys allowed in a record's evidence: references to documents kept elsewhere, never values.
EVIDENCE_KEYS = frozenset(
    {"banner_id", "banner_version", "form_id", "signature_ref", "receipt_id", "guardian_reference", "store_id", "note"}
)
_CLOCK_SKEW = timedelta(minutes=5)
PORTAL_SIGNER_SALT = "cdp.consent.portal-link"


class ConsentError(ValueError):
    """A consent change that cannot be recorded as asked. `code` is machine-readable."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class GuardianRequired(ConsentError):
    """The subject is a minor under the applicable age: only a guardian's grant counts."""

    def __init__(self) -> None:
        super().__init__(
            "the subject is under the age of digital consent; a guardian must grant (event guardian_granted)",
            code="guardian_required",
        )


class PortalLinkRefused(Exception):
    """A portal link that is unknown, forged, used or expired. `reason` is a code."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"portal link refused: {reason}")
        self.reason = reason


def consent_seed_purposes() -> str:
    """Create the seeded purposes and notices if missing (idempotent): demo and tests call it,
    the data migration does the same for a fresh database."""
    purposes, versions = seed_purposes(Purpose, PolicyVersion)
    return f"{purposes} purposes and {versions} policy versions created"


# --- checks shared by the services -------------------------------------------------------


def _check_subject_actor(actor: Actor, subject_id: uuid.UUID, *, roles: tuple[str, ...]) -> None:
    """A portal session acts only for its own subject; everyone else needs a role and, for
    people acting through the API or the staff pages, a declared purpose."""
    if actor.kind == ActorKind.PORTAL:
        if actor.role != Role.SUBJECT or actor.actor_id != portal_actor_id(subject_id):
            raise PermissionDenied("a portal session may act only for its own subject")
        return
    actor.require_role(*roles)
    if actor.kind in (ActorKind.API_KEY, ActorKind.STAFF) and actor.role != Role.SOURCE:
        actor.require_purpose()


def _active_subject(subject_id: uuid.UUID, *, lock: bool = False) -> Profile:
    query = Profile.objects.select_for_update() if lock else Profile.objects
    subject = query.filter(pk=subject_id).first()
    if subject is None:
        raise ConsentError("no such subject", code="not_found")
    if subject.status != ProfileStatus.ACTIVE:
        raise ConsentError(f"the subject is {subject.status}; consent cannot change", code="subject_inactive")
    return subject


def _purpose(code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=code).first()
    if purpose is None or not purpose.active:
        raise ConsentError(f"unknown or inactive purpose {code!r}", code="unknown_purpose")
    return purpose


def subject_traits(subject: Profile) -> dict[str, Any]:
    """The subject's sealed traits, or {} when none are held (or the key was shredded)."""
    if not subject.vault:
        return {}
    try:
        return open_sealed(subject_id=subject.pk, field="traits", blob=subject.vault) or {}
    except (KeyShreddedError, DecryptionError):
        return {}


def age_on(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def minor_age_threshold(*, country: str, purpose: Purpose) -> int:
    """The age below which a guardian must consent. The country's setting when known;
    otherwise the most protective age among the purpose's jurisdictions."""
    by_country = settings.CDP_CONSENT_MINOR_AGE_BY_COUNTRY
    if country and country.upper() in by_country:
        return int(by_country[country.upper()])
    ages = settings.CDP_CONSENT_MINOR_AGE
    jurisdictions = [j for j in (purpose.jurisdictions or []) if j in ages] or list(ages)
    return max(int(ages[j]) for j in jurisdictions)


def subject_is_minor(subject: Profile, purpose: Purpose, *, today: date | None = None) -> bool:
    """True when the vault's birth_date says the person is under the threshold. No birth date
    on file: treated as an adult (the brand's capture flow must ask for age where it matters)."""
    traits = subject_traits(subject)
    raw = traits.get("birth_date")
    if not raw:
        return False
    try:
        born = date.fromisoformat(str(raw)[:10])
    except ValueError:
        return False
    country = str(subject.attributes.get("country") or traits.get("country") or "")
    return age_on(born, today or timezone.localdate()) < minor_age_threshold(country=country, purpose=purpose)


def _clean_evidence(evidence: dict[str, Any] | None) -> dict[str, str]:
    evidence = dict(evidence or {})
    unknown = set(evidence) - EVIDENCE_KEYS
    if unknown:
        raise ConsentError(
            f"evidence keys not allowed: {sorted(unknown)}; allowed: {sorted(EVIDENCE_KEYS)}", code="invalid_evidence"
        )
    cleaned: dict[str, str] = {}
    for key, value in evidence.items():
        if not isinstance(value, str | int) or len(str(value)) > 128:
            raise ConsentError(f"evidence {key!r} must be a short reference", code="invalid_evidence")
        cleaned[key] = str(value)
    return cleaned


def _resolve_policy(purpose: Purpose, *, version: int | None, language: str, at: datetime) -> PolicyVersion | None:
    if version is None:
        return selectors.policy_current(purpose=purpose, language=language, at=at)
    found = PolicyVersion.objects.filter(purpose=purpose, version=version, published_at__lte=at)
    return found.filter(language=language).first() or found.order_by("language").first()


def _update_state(record: ConsentRecord) -> None:
    """Move the derived state to `record` unless a later record (by occurrence) already holds it:
    a POS signature recorded late must not overwrite a withdrawal made since."""
    state = (
        ConsentState.objects.select_for_update()
        .filter(subject_id=record.subject_id, purpose_id=record.purpose_id, channel=record.channel)
        .first()
    )
    facts = {
        "event": record.event,
        "record": record,
        "policy_version_number": record.policy_version_number,
        "occurred_at": record.occurred_at,
        "expires_at": record.expires_at,
    }
    if state is None:
        ConsentState.objects.create(
            subject_id=record.subject_id, purpose_id=record.purpose_id, channel=record.channel, **facts
        )
        return
    if (record.occurred_at, record.pk) < (state.occurred_at, state.record_id):
        return
    for name, value in facts.items():
        setattr(state, name, value)
    state.save()


# --- recording consent -------------------------------------------------------------------


def consent_record(
    *,
    actor: Actor,
    subject_id: uuid.UUID | str,
    purpose: str,
    event: str,
    method: str,
    channel: str = "",
    source: str = "",
    language: str = "en",
    policy_version: int | None = None,
    occurred_at: datetime | None = None,
    expires_at: datetime | None = None,
    ip_address: str = "",
    user_agent: str = "",
    evidence: dict[str, Any] | None = None,
) -> ConsentRecord:
    """Append one consent event with its evidence and move the current state.

    Why the checks: a grant must name the notice the person saw (policy version and text hash);
    a minor's plain grant is refused (PIPL Art. 31, GDPR Art. 8) and needs `guardian_granted`
    with a guardian reference; withdrawal needs no more than the grant did (GDPR Art. 7(3),
    PIPL Art. 15). The client's address and user agent are kept only as keyed hashes.
    """
    subject_uuid = uuid.UUID(str(subject_id))
    _check_subject_actor(actor, subject_uuid, roles=RECORDING_ROLES)
    if event not in ConsentEvent.values:
        raise ConsentError(f"unknown event {event!r}", code="invalid_event")
    if method not in ConsentMethod.values:
        raise ConsentError(f"unknown method {method!r}", code="invalid_method")
    now = timezone.now()
    occurred = occurred_at or now
    if occurred > now + _CLOCK_SKEW:
        raise ConsentError("occurred_at is in the future", code="invalid_time")
    if expires_at is not None and expires_at <= occurred:
        raise ConsentError("expires_at must follow occurred_at", code="invalid_time")
    clean_evidence = _clean_evidence(evidence)

    # Validate before the write transaction, so a refusal's audit entry is not rolled back.
    subject = _active_subject(subject_uuid)
    purpose_obj = _purpose(purpose)
    if not purpose_obj.needs_consent:
        raise ConsentError(
            f"purpose {purpose!r} rests on {purpose_obj.legal_basis}, not consent; use an objection instead",
            code="not_consent_based",
        )
    if channel and purpose_obj.channels and channel not in purpose_obj.channels:
        raise ConsentError(
            f"channel {channel!r} is outside purpose {purpose!r} ({', '.join(purpose_obj.channels)})",
            code="invalid_channel",
        )
    policy = _resolve_policy(purpose_obj, version=policy_version, language=language, at=occurred)
    if event in GRANTING_EVENTS and policy is None:
        raise ConsentError("no published notice for this purpose and version", code="no_policy")
    if event == ConsentEvent.GUARDIAN_GRANTED and not clean_evidence.get("guardian_reference"):
        raise ConsentError("a guardian's grant needs evidence.guardian_reference", code="invalid_evidence")
    if event == ConsentEvent.GRANTED and subject_is_minor(subject, purpose_obj, today=occurred.date()):
        audit_record(
            actor=actor,
            action=AuditAction.CONSENT_REFUSED,
            outcome=Outcome.DENIED,
            subject_id=subject.pk,
            details={"purpose": purpose_obj.code, "code": "guardian_required"},
        )
        raise GuardianRequired()

    with transaction.atomic():
        subject = _active_subject(subject_uuid, lock=True)
        record = ConsentRecord(
            subject=subject,
            purpose=purpose_obj,
            event=event,
            channel=channel,
            policy_version=policy,
            policy_version_number=policy.version if policy else 0,
            policy_text_sha256=policy.text_sha256 if policy else "",
            source=source[:64],
            method=method,
            actor_kind=str(actor.kind),
            actor_id=actor.actor_id,
            occurred_at=occurred,
            expires_at=expires_at,
            ip_hash=keyed_hash(domain="consent.ip", value=ip_address) if ip_address else "",
            user_agent_hash=keyed_hash(domain="consent.user_agent", value=user_agent) if user_agent else "",
            evidence=clean_evidence,
            request_id=actor.request_id[:64],
        )
        record.save(force_insert=True)
        _update_state(record)
        action = {
            ConsentEvent.WITHDRAWN: AuditAction.CONSENT_WITHDRAW,
            ConsentEvent.EXPIRED: AuditAction.CONSENT_EXPIRE,
        }.get(event, AuditAction.CONSENT_GRANT)
        audit_record(
            actor=actor,
            action=action,
            subject_id=subject.pk,
            legal_basis=LegalBasis.CONSENT,
            object_type="consent_record",
            object_id=record.pk,
            details={
                "purpose": purpose_obj.code,
                "event": event,
                "channel": channel,
                "method": method,
                "policy_version": record.policy_version_number,
            },
        )
    return record


def consent_grant(**kwargs: Any) -> ConsentRecord:
    """Shorthand for consent_record(event="granted", ...)."""
    return consent_record(event=ConsentEvent.GRANTED, **kwargs)


def consent_withdraw(**kwargs: Any) -> ConsentRecord:
    """Shorthand for consent_record(event="withdrawn", ...)."""
    return consent_record(event=ConsentEvent.WITHDRAWN, **kwargs)


def consents_expire_due(*, actor: Actor, now: datetime | None = None) -> int:
    """Append an `expired` record for every grant whose expiry has passed (idempotent: once
    expired, the state no longer grants). Enforcement already ignores expired grants; this makes
    the ledger say so. Returns how many expired."""
    actor.require_role(Role.SYSTEM, Role.COMPLIANCE, Role.ADMIN)
    moment = now or timezone.now()
    due = ConsentState.objects.filter(event__in=GRANTING_EVENTS, expires_at__lte=moment).select_related("purpose")
    count = 0
    for state in due:
        consent_record(
            actor=actor,
            subject_id=state.subject_id,
            purpose=state.purpose.code,
            event=ConsentEvent.EXPIRED,
            method=ConsentMethod.SYSTEM,
            channel=state.channel,
            occurred_at=max(state.expires_at, state.occurred_at + timedelta(microseconds=1)),
        )
        count += 1
    return count


# --- notices -------------------------------------------------------------------------------


def policy_publish(
    *,
    actor: Actor,
    purpose: str,
    texts: dict[str, str],
    material: bool,
    published_at: datetime | None = None,
) -> list[PolicyVersion]:
    """Publish the next notice version of a purpose in one or more languages.

    A material version makes every consent given to an earlier version stale: enforcement
    treats it as not granted until the person consents to the new text (GDPR Art. 7, PIPL
    Art. 14: consent must be informed by the notice actually in force).
    """
    actor.require_role(Role.COMPLIANCE, Role.ADMIN, Role.SYSTEM)
    if not texts or any(not (t or "").strip() for t in texts.values()):
        raise ConsentError("every language needs a non-empty text", code="invalid")
    unknown = set(texts) - {code for code, _ in settings.LANGUAGES}
    if unknown:
        raise ConsentError(f"unknown languages {sorted(unknown)}", code="invalid")
    with transaction.atomic():
        purpose_obj = Purpose.objects.select_for_update().filter(code=purpose).first()
        if purpose_obj is None:
            raise ConsentError(f"unknown purpose {purpose!r}", code="unknown_purpose")
        last = PolicyVersion.objects.filter(purpose=purpose_obj).order_by("-version").first()
        version = (last.version if last else 0) + 1
        moment = published_at or timezone.now()
        created = [
            PolicyVersion.objects.create(
                purpose=purpose_obj,
                version=version,
                language=language,
                text=text,
                published_at=moment,
                material=material or version == 1,
            )
            for language, text in sorted(texts.items())
        ]
        audit_record(
            actor=actor,
            action=AuditAction.POLICY_PUBLISH,
            object_type="purpose",
            object_id=purpose_obj.code,
            details={"version": version, "material": material, "languages": sorted(texts)},
        )
    return created


# --- reading and exporting -----------------------------------------------------------------


def consent_read(*, actor: Actor, subject_id: uuid.UUID | str) -> dict[str, Any]:
    """A subject's current state per purpose and full history, audited (consent.read)."""
    subject_uuid = uuid.UUID(str(subject_id))
    _check_subject_actor(actor, subject_uuid, roles=READING_ROLES)
    if not Profile.objects.filter(pk=subject_uuid).exists():
        raise ConsentError("no such subject", code="not_found")
    overview = selectors.consent_overview(subject_id=subject_uuid)
    history = list(selectors.consent_history(subject_id=subject_uuid))
    audit_record(
        actor=actor,
        action=AuditAction.CONSENT_READ if actor.kind != ActorKind.PORTAL else AuditAction.PORTAL_VIEW,
        subject_id=subject_uuid,
        details={"records": len(history)},
    )
    return {"subject_id": subject_uuid, "purposes": overview, "history": history}


EVIDENCE_COLUMNS = [
    "record_id",
    "subject_id",
    "purpose",
    "event",
    "channel",
    "policy_version",
    "policy_language",
    "policy_text_sha256",
    "source",
    "method",
    "actor_kind",
    "actor_id",
    "occurred_at",
    "recorded_at",
    "expires_at",
    "ip_hash",
    "user_agent_hash",
    "evidence",
    "request_id",
]


def evidence_row(record: ConsentRecord) -> dict[str, Any]:
    return {
        "record_id": record.pk,
        "subject_id": str(record.subject_id),
        "purpose": record.purpose.code,
        "event": record.event,
        "channel": record.channel,
        "policy_version": record.policy_version_number,
        "policy_language": record.policy_version.language if record.policy_version else "",
        "policy_text_sha256": record.policy_text_sha256,
        "source": record.source,
        "method": record.method,
        "actor_kind": record.actor_kind,
        "actor_id": record.actor_id,
        "occurred_at": record.occurred_at.isoformat(),
        "recorded_at": record.recorded_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else "",
        "ip_hash": record.ip_hash,
        "user_agent_hash": record.user_agent_hash,
        "evidence": dict(record.evidence),
        "request_id": record.request_id,
    }


def consent_evidence_export(*, actor: Actor, subject_id: uuid.UUID | str, fmt: str) -> tuple[str, str]:
    """The subject's consent evidence as JSON or CSV (text, content type), audited
    (consent.export). Compliance only: this is the proof a regulator asks for (GDPR Art. 7(1))."""
    subject_uuid = uuid.UUID(str(subject_id))
    actor.require_role(Role.COMPLIANCE)
    actor.require_purpose()
    if fmt not in ("json", "csv"):
        raise ConsentError("format must be json or csv", code="invalid")
    if not Profile.objects.filter(pk=subject_uuid).exists():
        raise ConsentError("no such subject", code="not_found")
    rows = [evidence_row(r) for r in selectors.consent_history(subject_id=subject_uuid)]
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.CONSENT_EXPORT,
            subject_id=subject_uuid,
            details={"records": len(rows), "format": fmt},
        )
    if fmt == "json":
        import json

        body = json.dumps({"subject_id": str(subject_uuid), "records": rows}, ensure_ascii=False, indent=1)
        return body, "application/json"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EVIDENCE_COLUMNS)
    writer.writeheader()
    for row in rows:
        import json

        writer.writerow(row | {"evidence": json.dumps(row["evidence"], sort_keys=True)})
    return out.getvalue(), "text/csv"


# --- the portal --------------------------------------------------------------------------


def portal_actor_id(subject_id: uuid.UUID | str) -> str:
    return f"subject:{subject_id}"


def portal_actor(*, subject_id: uuid.UUID | str, client_hash: str = "", request_id: str = "") -> Actor:
    """The Actor of a portal session: the person themselves, identified by the pseudonym."""
    kwargs = {"request_id": request_id} if request_id else {}
    return Actor(
        kind=ActorKind.PORTAL,
        actor_id=portal_actor_id(subject_id),
        role=Role.SUBJECT,
        purpose="consent_management",
        client_hash=client_hash,
        name="portal",
        **kwargs,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedLink:
    link: PortalLink
    token: str  # signed token for the URL; shown once, only its hash is stored

    @property
    def path(self) -> str:
        return f"/portal/open/{self.token}"


def portal_link_create(*, actor: Actor, subject_id: uuid.UUID | str, ttl_minutes: int | None = None) -> IssuedLink:
    """Issue a signed, expiring, single-use portal link for one subject (audited portal.link).

    The URL carries only a random token with a signature; the database keeps its SHA-256, so a
    database dump cannot be turned back into working links.
    """
    actor.require_role(Role.STEWARD, Role.ADMIN, Role.SYSTEM)
    subject_uuid = uuid.UUID(str(subject_id))
    ttl = ttl_minutes if ttl_minutes is not None else settings.CDP_PORTAL_LINK_TTL_MINUTES
    if not 1 <= ttl <= 30 * 24 * 60:
        raise ConsentError("ttl_minutes must be between 1 and 43200", code="invalid")
    raw = secrets.token_urlsafe(32)
    token = signing.Signer(salt=PORTAL_SIGNER_SALT).sign(raw)
    with transaction.atomic():
        subject = _active_subject(subject_uuid)
        link = PortalLink.objects.create(
            subject=subject,
            token_hash=_token_hash(raw),
            expires_at=timezone.now() + timedelta(minutes=ttl),
            created_by=actor.actor_id,
        )
        audit_record(
            actor=actor,
            action=AuditAction.PORTAL_LINK,
            subject_id=subject.pk,
            object_type="portal_link",
            object_id=link.pk,
            details={"ttl_minutes": ttl},
        )
    return IssuedLink(link=link, token=token)


def portal_link_consume(*, token: str, client_hash: str = "", request_id: str = "") -> uuid.UUID:
    """Open a portal link: check its signature, mark it used (once, race-free) and return the
    subject id for the session. Refusals are audited (portal.refused) and raise PortalLinkRefused."""
    refusal_actor = Actor(
        kind=ActorKind.PORTAL,
        actor_id="portal:anonymous",
        role=Role.SUBJECT,
        client_hash=client_hash,
        **({"request_id": request_id} if request_id else {}),
    )
    try:
        raw = signing.Signer(salt=PORTAL_SIGNER_SALT).unsign(token)
    except signing.BadSignature:
        audit_record(actor=refusal_actor, action=AuditAction.PORTAL_REFUSED, outcome=Outcome.DENIED,
                     details={"reason": "bad_signature"})  # fmt: skip
        raise PortalLinkRefused("bad_signature") from None
    now = timezone.now()
    with transaction.atomic():
        link = PortalLink.objects.select_for_update().filter(token_hash=_token_hash(raw)).first()
        reason = ""
        if link is None:
            reason = "unknown"
        elif link.used_at is not None:
            reason = "used"
        elif link.expires_at <= now:
            reason = "expired"
        elif link.subject.status != ProfileStatus.ACTIVE:
            reason = "subject_inactive"
        if not reason:
            updated = PortalLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now)
            reason = "" if updated == 1 else "used"
        if reason:
            audit_record(
                actor=refusal_actor,
                action=AuditAction.PORTAL_REFUSED,
                outcome=Outcome.DENIED,
                subject_id=link.subject_id if link else None,
                object_type="portal_link",
                object_id=link.pk if link else "",
                details={"reason": reason},
            )
        else:
            audit_record(
                actor=portal_actor(subject_id=link.subject_id, client_hash=client_hash, request_id=request_id),
                action=AuditAction.PORTAL_OPEN,
                subject_id=link.subject_id,
                object_type="portal_link",
                object_id=link.pk,
            )
    if reason:
        raise PortalLinkRefused(reason)
    return link.subject_id


def consent_import_grants(
    *,
    actor: Actor,
    grants: list[tuple[uuid.UUID, str]],
    method: str,
    source: str = "",
    language: str = "en",
    occurred_at: datetime | None = None,
) -> dict[str, int]:
    """Import grants in bulk (a migration from a legacy system, the demo): one transaction,
    one audit entry for the batch. Idempotent: a (subject, purpose) that already has a state
    is skipped. Minors and inactive subjects are skipped and counted, never granted."""
    actor.require_role(Role.STEWARD, Role.ADMIN, Role.SYSTEM)
    if method not in ConsentMethod.values:
        raise ConsentError(f"unknown method {method!r}", code="invalid_method")
    moment = occurred_at or timezone.now()
    purposes = {p.code: p for p in Purpose.objects.filter(active=True)}
    unknown = {code for _, code in grants} - set(purposes)
    if unknown:
        raise ConsentError(f"unknown purposes {sorted(unknown)}", code="unknown_purpose")
    notices = {code: selectors.policy_current(purpose=p, language=language, at=moment) for code, p in purposes.items()}
    counts = {"granted": 0, "skipped_existing": 0, "skipped_minor": 0, "skipped_inactive": 0}
    with transaction.atomic():
        subjects = Profile.objects.in_bulk({s for s, _ in grants})
        existing = set(
            ConsentState.objects.filter(subject_id__in=list(subjects), channel="").values_list(
                "subject_id", "purpose__code"
            )
        )
        records = []
        for subject_id, code in grants:
            subject = subjects.get(subject_id)
            if subject is None or subject.status != ProfileStatus.ACTIVE or notices[code] is None:
                counts["skipped_inactive"] += 1
            elif (subject_id, code) in existing:
                counts["skipped_existing"] += 1
            elif subject_is_minor(subject, purposes[code], today=moment.date()):
                counts["skipped_minor"] += 1
            else:
                existing.add((subject_id, code))
                notice = notices[code]
                records.append(
                    ConsentRecord(
                        subject=subject,
                        purpose=purposes[code],
                        event=ConsentEvent.GRANTED,
                        policy_version=notice,
                        policy_version_number=notice.version,
                        policy_text_sha256=notice.text_sha256,
                        source=source[:64],
                        method=method,
                        actor_kind=str(actor.kind),
                        actor_id=actor.actor_id,
                        occurred_at=moment,
                        request_id=actor.request_id[:64],
                    )
                )
        created = ConsentRecord.objects.bulk_create(records, batch_size=1000)
        if connection_lacks_returning_ids(created):
            created = list(
                ConsentRecord.objects.filter(request_id=actor.request_id[:64], occurred_at=moment).order_by("id")
            )
        ConsentState.objects.bulk_create(
            [
                ConsentState(
                    subject_id=r.subject_id,
                    purpose_id=r.purpose_id,
                    channel="",
                    event=r.event,
                    record=r,
                    policy_version_number=r.policy_version_number,
                    occurred_at=r.occurred_at,
                )
                for r in created
            ],
            batch_size=1000,
        )
        counts["granted"] = len(created)
        audit_record(
            actor=actor,
            action=AuditAction.CONSENT_GRANT,
            legal_basis=LegalBasis.CONSENT,
            object_type="consent_import",
            details={**counts, "method": method},
        )
    return counts


def connection_lacks_returning_ids(created: list[ConsentRecord]) -> bool:
    """bulk_create sets primary keys on PostgreSQL and SQLite >= 3.35; older SQLite does not."""
    return any(r.pk is None for r in created)
