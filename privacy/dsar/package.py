"""Access and portability packages (GDPR Arts. 15, 20; PIPL Art. 45).

Everything held about the person, opened: traits, identifiers, events, consent history with its
evidence, merge history, the audit entries about them, the purposes with recipients and
retention, and what registered providers contribute. One zip: `data.json` (all of it), one CSV
per kind, and `manifest.json` with the SHA-256 of every file. The zip is sealed under a fresh
crypto subject (never plaintext at rest); downloading it once, or expiry, shreds that key.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, PermissionDenied, Role
from cdp.models import Event, Profile
from privacy.audit import AuditAction, audit_record
from privacy.crypto import DecryptionError, KeyShreddedError, open_sealed, seal, shred_subject
from privacy.dsar.models import DataSubjectRequest, DsarPackage, DsarStatus, DsarType
from privacy.dsar.providers import providers

PACKAGE_FIELD = "dsar_package"
DOWNLOAD_ROLES = (Role.COMPLIANCE, Role.STEWARD)


class PackageUnavailable(LookupError):
    """No package, already downloaded, or expired."""


def _open(subject: uuid.UUID, field: str, blob: Any) -> Any:
    try:
        return open_sealed(subject_id=subject, field=field, blob=blob) if blob else None
    except (KeyShreddedError, DecryptionError):
        return None


def subject_data(subject_id: uuid.UUID) -> dict[str, Any]:
    """Everything held about one subject, opened, as JSON-ready sections (lists of rows)."""
    from cdp.services.profiles import _merge_history, event_properties
    from consent.models import ConsentRecord, Purpose
    from identity.models import Identifier
    from privacy.audit.models import AuditEntry

    profile = Profile.objects.get(pk=subject_id)
    traits = _open(profile.pk, "traits", profile.vault) or {}
    data: dict[str, Any] = {
        "profile": [
            {
                "profile_id": str(profile.pk),
                "status": profile.status,
                "journey_stage": profile.journey_stage,
                "first_seen_at": profile.first_seen_at,
                "last_seen_at": profile.last_seen_at,
            }
        ],
        "traits": [{"key": k, "value": v, "personal": True} for k, v in sorted(traits.items())]
        + [{"key": k, "value": v, "personal": False} for k, v in sorted((profile.attributes or {}).items())],
        "identifiers": [
            {
                "type": i.id_type,
                "value": _open(i.origin_profile_id, f"identifier:{i.id_type}", i.sealed_value),
                "first_seen_at": i.first_seen_at,
                "last_seen_at": i.last_seen_at,
            }
            for i in Identifier.objects.filter(profile=profile).order_by("id_type", "id")
        ],
        "events": [
            {
                "message_id": e.message_id,
                "source": e.source.name if e.source_id else "",
                "type": e.type,
                "name": e.name,
                "channel": e.channel,
                "occurred_at": e.occurred_at,
                "properties": event_properties(e),
            }
            for e in Event.objects.filter(profile=profile).select_related("source").order_by("occurred_at", "id")
        ],
        "consent_history": [
            {
                "purpose": r.purpose.code,
                "event": r.event,
                "channel": r.channel,
                "policy_version": r.policy_version_number,
                "policy_text_sha256": r.policy_text_sha256,
                "method": r.method,
                "source": r.source,
                "actor_kind": r.actor_kind,
                "occurred_at": r.occurred_at,
                "recorded_at": r.recorded_at,
                "expires_at": r.expires_at,
                "evidence": r.evidence,
            }
            for r in ConsentRecord.objects.filter(subject=profile)
            .select_related("purpose")
            .order_by("occurred_at", "id")
        ],
        "merge_history": _merge_history(profile.pk),
        "audit_entries": [
            {
                "seq": a.seq,
                "occurred_at": a.occurred_at,
                "action": a.action,
                "outcome": a.outcome,
                "actor_kind": a.actor_kind,
                "role": a.role,
                "purpose": a.purpose,
                "object_type": a.object_type,
                "object_id": a.object_id,
                "details": a.details,
            }
            for a in AuditEntry.objects.filter(subject_id=profile.pk).order_by("seq")
        ],
        "purposes": [
            {
                "code": p.code,
                "name_en": p.name_en,
                "name_zh": p.name_zh,
                "legal_basis": p.legal_basis,
                "data_categories": p.data_categories,
                "recipients": p.recipients,
                "retention_days": p.retention_days,
            }
            for p in Purpose.objects.filter(active=True).order_by("code")
        ],
    }
    for provider in providers():
        if provider.export is not None:
            data[provider.name] = list(provider.export(profile.pk))
    return data


def _json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or ["empty"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: _json(v) if isinstance(v, dict | list) else ("" if v is None else str(v)) for k, v in row.items()}
        )
    return out.getvalue().encode("utf-8")


def package_zip(data: dict[str, Any]) -> bytes:
    """data.json + one CSV per section + manifest.json (SHA-256 of every other file)."""
    files: dict[str, bytes] = {"data.json": _json(data).encode("utf-8")}
    for name, rows in data.items():
        files[f"{name}.csv"] = _csv(rows)
    manifest = {
        "format": "cdp-dsar-package/1",
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in sorted(files.items()):
            archive.writestr(name, body)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return buffer.getvalue()


def dsar_package_build(*, actor: Actor, request_id: int) -> DsarPackage:
    """Build (once) the sealed package of an access or portability request; audited as a
    `profile.export`. Idempotent: an existing package is returned as it is."""
    actor.require_role(Role.COMPLIANCE, Role.STEWARD, Role.SYSTEM)
    request = DataSubjectRequest.objects.get(pk=request_id)
    if request.type not in (DsarType.ACCESS, DsarType.PORTABILITY):
        raise ValueError("only access and portability requests have a package")
    existing = DsarPackage.objects.filter(request=request).first()
    if existing is not None:
        return existing
    data = subject_data(request.subject_id)
    body = package_zip(data)
    key_id = uuid.uuid4()
    with transaction.atomic():
        package = DsarPackage.objects.create(
            request=request,
            subject_id=request.subject_id,
            key_id=key_id,
            blob=seal(subject_id=key_id, field=PACKAGE_FIELD, value=base64.b64encode(body).decode("ascii")),
            sha256=hashlib.sha256(body).hexdigest(),
            size=len(body),
            expires_at=timezone.now() + timedelta(hours=int(settings.CDP_DSAR_PACKAGE_TTL_HOURS)),
        )
        audit_record(
            actor=actor,
            action=AuditAction.PROFILE_EXPORT,
            subject_id=request.subject_id,
            object_type="dsar",
            object_id=request.pk,
            details={"sections": {k: len(v) for k, v in data.items()}, "sha256": package.sha256},
        )
    return package


def dsar_package_download(*, actor: Actor, request_id: int) -> tuple[bytes, DsarPackage]:
    """The package's zip, once: the download opens it, then destroys the blob and shreds its
    key in the same transaction, and audits `dsar.download`. Raises PackageUnavailable."""
    if actor.role not in {str(r) for r in DOWNLOAD_ROLES}:
        raise PermissionDenied("only compliance officers and stewards download packages", code="role_not_allowed")
    with transaction.atomic():
        package = (
            DsarPackage.objects.select_for_update()
            .select_related("request")
            .filter(request_id=request_id, request__status=DsarStatus.COMPLETED)
            .first()
        )
        if package is None or package.downloaded_at is not None or package.blob is None:
            raise PackageUnavailable("no package to download (not built yet, or already downloaded)")
        if package.expires_at <= timezone.now():
            raise PackageUnavailable("the download link has expired")
        body = base64.b64decode(open_sealed(subject_id=package.key_id, field=PACKAGE_FIELD, blob=package.blob))
        package.blob = None
        package.downloaded_at = timezone.now()
        package.save(update_fields=["blob", "downloaded_at"])
        shred_subject(subject_id=package.key_id)
        audit_record(
            actor=actor,
            action=AuditAction.DSAR_DOWNLOAD,
            subject_id=package.subject_id,
            object_type="dsar",
            object_id=request_id,
            details={"sha256": package.sha256, "bytes": len(body)},
        )
    return body, package


def dsar_packages_expire(*, actor: Actor) -> int:
    """Destroy packages past their expiry (blob dropped, key shredded). Idempotent; returns how many."""
    actor.require_role(Role.SYSTEM, Role.COMPLIANCE)
    count = 0
    for package in DsarPackage.objects.filter(expires_at__lte=timezone.now(), blob__isnull=False):
        with transaction.atomic():
            DsarPackage.objects.filter(pk=package.pk).update(blob=None)
            shred_subject(subject_id=package.key_id)
            audit_record(
                actor=actor,
                action=AuditAction.KEY_SHRED,
                subject_id=package.subject_id,
                object_type="dsar_package",
                object_id=package.request_id,
                details={"expired": True},
            )
        count += 1
    return count
