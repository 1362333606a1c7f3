"""Segments: define, materialise in SQL, estimate through DP, and activate with consent at export time.

Why this shape:
- Materialisation is one INSERT ... SELECT built from the rule compiler's queryset: the database
  does the work, no profile row passes through Python, and every user value is a parameter.
- Marketing never sees an exact count: sizes come from the DP engine (charged to the caller's
  budget); export exclusions are released as one geometric-noise count (charged likewise).
- An export is decided at build time, not at materialisation time: members who withdrew
  consent, are restricted, merged away or erased, or whose contact identifier is suppressed are
  left out. It holds the pseudonymous id plus the one identifier its channel needs, sealed under
  the export's own id; the key is shredded after the single download or at expiry.
- (issue 10) An export names a registered recipient allowed for its purpose; a recipient that is
  another handler or abroad also needs each person's `third_party_sharing` / `cross_border_transfer`
  consent (privacy.compliance.services), and every build records the disclosures (GDPR Art. 19).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cdp.actor import Actor, PermissionDenied, Role
from cdp.models import Profile, ProfileStatus, Segment, SegmentExport, SegmentMembership
from cdp.services.rules import Registry, RuleError, rules_compile
from privacy.audit import AuditAction, Outcome, audit_record

# Channel -> the one identifier type the channel needs. Nothing else leaves in an export.
EXPORT_CHANNELS: dict[str, str] = {"sms": "phone", "phone": "phone", "email": "email", "wechat": "wechat_openid"}
SEGMENT_ROLES = (Role.MARKETING,)
ESTIMATE_DIMENSIONS_HELP = "Up to 2 public dimensions: journey_stage, trait:<enum key>."


class SegmentError(RuleError):
    """Bad input for a segment operation; `path` is the JSON path of the bad node."""


class ExportUnavailable(Exception):
    """The export cannot be downloaded (not ready, already downloaded, expired)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _validate(definition: Any) -> None:
    if not isinstance(definition, dict) or not definition:
        raise SegmentError("$.definition", "must be a non-empty rule tree object")
    try:
        rules_compile(definition, path="$.definition", registry=Registry.load())
    except RuleError as exc:
        raise SegmentError(exc.path, exc.message) from exc


def _enqueue_materialise(segment_id: int) -> None:
    from cdp.tasks import segment_materialise_task

    transaction.on_commit(lambda: segment_materialise_task.delay(segment_id))


# --- definitions -------------------------------------------------------------------------------


def segment_create(*, actor: Actor, name: str, definition: dict, description: str = "") -> Segment:
    """Create a segment (validated against the registry) and queue its first materialisation."""
    actor.require_role(*SEGMENT_ROLES)
    _validate(definition)
    with transaction.atomic():
        if Segment.objects.filter(name=name).exists():
            raise SegmentError("$.name", "a segment with this name exists")
        segment = Segment.objects.create(
            name=name, description=description, definition=definition, owner=actor.actor_id
        )
        audit_record(
            actor=actor,
            action=AuditAction.SEGMENT_CREATE,
            object_type="segment",
            object_id=segment.id,
            details={"version": 1},
        )
        _enqueue_materialise(segment.id)
    return segment


def segment_update(
    *,
    actor: Actor,
    segment_id: int,
    name: str | None = None,
    definition: dict | None = None,
    description: str | None = None,
) -> Segment:
    """Change a segment; a new definition bumps the version and queues a re-materialisation."""
    actor.require_role(*SEGMENT_ROLES)
    if definition is not None:
        _validate(definition)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(id=segment_id)
        if name is not None and name != segment.name:
            if Segment.objects.filter(name=name).exclude(id=segment.id).exists():
                raise SegmentError("$.name", "a segment with this name exists")
            segment.name = name
        if description is not None:
            segment.description = description
        changed = definition is not None and definition != segment.definition
        if changed:
            segment.definition = definition
            segment.version += 1
        segment.save()
        audit_record(
            actor=actor,
            action=AuditAction.SEGMENT_UPDATE,
            object_type="segment",
            object_id=segment.id,
            details={"version": segment.version, "definition_changed": changed},
        )
        if changed:
            _enqueue_materialise(segment.id)
    return segment


def segment_delete(*, actor: Actor, segment_id: int) -> None:
    """Delete a segment and its memberships (exports keep their own lifecycle, so they block it)."""
    actor.require_role(*SEGMENT_ROLES)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(id=segment_id)
        if segment.exports.filter(status__in=[SegmentExport.Status.PENDING, SegmentExport.Status.READY]).exists():
            raise SegmentError(
                "$", "the segment has an export pending or ready; wait for it to be downloaded or expire"
            )
        SegmentMembership.objects.filter(segment=segment).delete()
        SegmentExport.objects.filter(segment=segment).delete()
        segment.delete()
        audit_record(actor=actor, action=AuditAction.SEGMENT_DELETE, object_type="segment", object_id=segment_id)


# --- materialisation ---------------------------------------------------------------------------


def segment_members_sql(definition: dict) -> tuple[str, tuple]:
    """SQL and parameters selecting the ids of active profiles matching `definition`.

    The text comes from the ORM compiler; every value and JSON key is in the parameters.
    """
    qs = Profile.objects.filter(status=ProfileStatus.ACTIVE).filter(rules_compile(definition)).values("id")
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


@dataclass(frozen=True)
class MaterialiseResult:
    segment_id: int
    version: int
    members: int
    computed_at: Any


def segment_materialise(*, segment_id: int, actor: Actor | None = None) -> MaterialiseResult:
    """Rebuild the membership of one segment in the database (DELETE + INSERT ... SELECT).

    The segment row is locked for the rebuild, so two materialisations of one segment serialise.

    Idempotent: running it twice yields the same rows with a later computed_at. The member count
    goes to the audit entry (compliance sees it), never to marketing.
    """
    actor = actor or Actor.system("segment_materialise")
    now = timezone.now()
    table = SegmentMembership._meta.db_table
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(id=segment_id)
        sql, params = segment_members_sql(segment.definition)
        stamp = connection.ops.adapt_datetimefield_value(now)
        columns = '("segment_id", "definition_version", "computed_at", "profile_id")'
        with connection.cursor() as cursor:
            cursor.execute(f'DELETE FROM "{table}" WHERE "segment_id" = %s', [segment.id])  # noqa: S608 (model meta)
            if connection.vendor == "postgresql":
                # PostgreSQL never runs the SELECT of an INSERT ... SELECT in parallel, but it does
                # for CREATE TABLE AS: evaluate the predicate in parallel, then copy the ids in
                # index order (sorted inserts halve the cost of maintaining the unique index).
                cursor.execute("DROP TABLE IF EXISTS segment_ids_tmp")
                cursor.execute(f"CREATE TEMP TABLE segment_ids_tmp ON COMMIT DROP AS {sql}", params)
                cursor.execute(
                    f'INSERT INTO "{table}" {columns} SELECT %s, %s, %s, t.id FROM segment_ids_tmp AS t ORDER BY t.id',  # noqa: S608
                    [segment.id, segment.version, stamp],
                )
            else:
                cursor.execute(
                    f'INSERT INTO "{table}" {columns} SELECT %s, %s, %s, m.id FROM ({sql}) AS m',  # noqa: S608
                    [segment.id, segment.version, stamp, *params],
                )
            members = cursor.rowcount
        segment.materialised_at = now
        segment.materialised_version = segment.version
        segment.save(update_fields=["materialised_at", "materialised_version"])
        audit_record(
            actor=actor,
            action=AuditAction.SEGMENT_MATERIALIZE,
            object_type="segment",
            object_id=segment.id,
            details={"version": segment.version, "members": members},
        )
    return MaterialiseResult(segment.id, segment.version, members, now)


def segments_refresh_all() -> int:
    """Scheduled refresh: re-materialise every segment (each in its own transaction)."""
    ids = list(Segment.objects.values_list("id", flat=True))
    for segment_id in ids:
        segment_materialise(segment_id=segment_id, actor=Actor.system("segments_refresh"))
    return len(ids)


def segment_request_materialise(*, actor: Actor, segment_id: int) -> None:
    """On-demand materialisation from the API: checked and queued, the worker does it."""
    actor.require_role(*SEGMENT_ROLES)
    Segment.objects.get(id=segment_id)
    with transaction.atomic():
        _enqueue_materialise(segment_id)


# --- hooks for identity (merge) and data-subject rights (export, erasure) -----------------------


def segment_memberships_move(*, survivor_id: uuid.UUID, absorbed_ids: list[uuid.UUID]) -> int:
    """A merge: the absorbed profiles' memberships become the survivor's (no duplicates).

    Called by identity's merge inside its transaction. Returns the rows moved.
    """
    moved = 0
    for absorbed in absorbed_ids:
        if absorbed == survivor_id:
            continue
        held = SegmentMembership.objects.filter(profile_id=survivor_id).values("segment_id")
        moved += (
            SegmentMembership.objects.filter(profile_id=absorbed)
            .exclude(segment_id__in=held)
            .update(profile_id=survivor_id)
        )
        SegmentMembership.objects.filter(profile_id=absorbed).delete()
    return moved


def segment_memberships_follow_merges(mapping: dict[uuid.UUID, uuid.UUID]) -> int:
    """The merges of one ingestion batch ({absorbed: final survivor}): memberships follow them.

    One query when none of the absorbed profiles is in a segment, which is the common case for
    profiles that ingestion itself created moments ago. Returns the rows moved.
    """
    pairs = {x: s for x, s in mapping.items() if x != s}
    if not pairs:
        return 0
    members = SegmentMembership.objects.filter(profile_id__in=list(pairs))
    held = set(members.values_list("profile_id", flat=True).distinct())
    return sum(segment_memberships_move(survivor_id=pairs[x], absorbed_ids=[x]) for x in held)


def segment_memberships_export(subject_id: uuid.UUID | str) -> list[dict]:
    """A data subject's segment memberships (access / portability)."""
    rows = SegmentMembership.objects.filter(profile_id=uuid.UUID(str(subject_id))).select_related("segment")
    return [
        {
            "segment": m.segment.name,
            "definition_version": m.definition_version,
            "computed_at": m.computed_at.isoformat(),
        }
        for m in rows.order_by("segment_id")
    ]


def segment_memberships_erase(subject_id: uuid.UUID | str) -> int:
    """Erasure: delete the subject's memberships. Returns the rows deleted."""
    deleted, _ = SegmentMembership.objects.filter(profile_id=uuid.UUID(str(subject_id))).delete()
    return deleted


# --- estimates (DP) ----------------------------------------------------------------------------


def segment_estimate(*, actor: Actor, segment_id: int, epsilon: float, group_by: list[str] | None = None):
    """A DP size of the segment (and breakdowns by public dimensions), charged to the caller.

    Goes through privacy.dp.engine: validation, budget, caching of identical specs and audit
    are the engine's. The population is the segment's current definition.
    """
    from privacy.dp.engine import dp_query_release

    actor.require_role(*SEGMENT_ROLES)
    segment = Segment.objects.get(id=segment_id)
    spec = {"metric": "count", "epsilon": epsilon, "population": segment.definition, "group_by": group_by or []}
    return dp_query_release(actor=actor, spec=spec)


# --- exports (activation) ----------------------------------------------------------------------


def export_create(
    *, actor: Actor, segment_id: int, purpose: str, channel: str, recipient_name: str = ""
) -> SegmentExport:
    """Request an export of a segment for one purpose and channel; the worker builds it."""
    from consent.models import Purpose

    actor.require_role(*SEGMENT_ROLES)
    segment = Segment.objects.get(id=segment_id)
    if channel not in EXPORT_CHANNELS:
        raise SegmentError("$.channel", f"must be one of: {', '.join(EXPORT_CHANNELS)}")
    purpose_obj = Purpose.objects.filter(code=purpose, active=True).first()
    if purpose_obj is None:
        raise SegmentError("$.purpose", "unknown or inactive purpose")
    if purpose_obj.channels and channel not in purpose_obj.channels:
        raise SegmentError("$.channel", f"purpose '{purpose}' does not cover this channel")
    if segment.materialised_version is None:
        raise SegmentError("$", "the segment has not been materialised yet")
    # issue 10: the export must name a registered recipient allowed for the purpose (audited refusal).
    from privacy.compliance.services import ComplianceError, recipient_for_export

    try:
        recipient_for_export(actor=actor, name=recipient_name, purpose=purpose, export_ref=str(segment.id))
    except ComplianceError as exc:
        raise SegmentError(exc.path, exc.message) from exc
    with transaction.atomic():
        export = SegmentExport.objects.create(
            segment=segment,
            definition_version=segment.materialised_version,
            purpose=purpose,
            channel=channel,
            recipient_name=recipient_name,
            requested_by=actor.actor_id,
            requested_role=actor.role,
            requested_kind=actor.kind,
            expires_at=timezone.now() + timedelta(seconds=settings.CDP_SEGMENT_EXPORT_TTL_SECONDS),
        )
        from cdp.tasks import segment_export_build_task

        transaction.on_commit(lambda: segment_export_build_task.delay(str(export.id)))
    return export


def _contacts(export: SegmentExport) -> tuple[list[dict], int]:
    """(rows, members): consented, contactable members with their one contact identifier."""
    from consent.enforcement import profiles_consented_for
    from identity.models import Identifier, Suppression
    from privacy.crypto import KeyShreddedError, open_sealed

    id_type = EXPORT_CHANNELS[export.channel]
    members = Profile.objects.filter(
        id__in=SegmentMembership.objects.filter(segment_id=export.segment_id).values("profile_id")
    )
    member_count = members.count()
    consented = profiles_consented_for(members, purpose=export.purpose, channel=export.channel)
    # issue 10: another handler (PIPL Art. 23) / abroad (Art. 39) needs the separate consents too.
    from privacy.compliance.models import Recipient
    from privacy.compliance.services import profiles_allowed_for_recipient

    recipient = Recipient.objects.filter(name=export.recipient_name, active=True).first()
    consented = profiles_allowed_for_recipient(consented, recipient) if recipient else consented.none()
    identifiers = (
        Identifier.objects.filter(profile_id__in=consented.values("id"), id_type=id_type, over_limit=False)
        .exclude(blind_index__in=Suppression.objects.filter(id_type=id_type).values("blind_index"))
        .order_by("profile_id", "-last_seen_at", "id")
        .only("profile_id", "origin_profile_id", "sealed_value", "id_type")
    )
    rows: list[dict] = []
    seen: set = set()
    for ident in identifiers.iterator(chunk_size=2000):
        if ident.profile_id in seen:
            continue
        try:
            value = open_sealed(
                subject_id=ident.origin_profile_id, field=f"identifier:{id_type}", blob=bytes(ident.sealed_value)
            )
        except KeyShreddedError:
            continue
        seen.add(ident.profile_id)
        rows.append({"profile_id": str(ident.profile_id), id_type: value})
    return rows, member_count


def _requester(export: SegmentExport) -> Actor:
    return Actor(
        kind=export.requested_kind, actor_id=export.requested_by, role=export.requested_role, purpose=export.purpose
    )


def _dp_exclusions(export: SegmentExport, actor: Actor, excluded: int) -> dict:
    """The excluded count with geometric noise (sensitivity 1), charged to the requester.

    Stored as a DP release so the budget ledger and the audit trail show the charge.
    """
    from privacy.dp.budget import (
        BudgetExhausted,
        as_epsilon,
        budget_accounts,
        budget_check,
        budget_debit,
        period_bounds,
    )
    from privacy.dp.mechanisms import geometric_half_width, geometric_noise
    from privacy.dp.models import BudgetCharge, DpRelease

    eps_value = settings.CDP_SEGMENT_EXCLUSION_EPSILON
    epsilon = as_epsilon(eps_value)
    dataset = settings.CDP_DP_DEFAULT_DATASET
    period = period_bounds(timezone.now())
    spec_hash = hashlib.sha256(f"segment-export-exclusions:{export.id}".encode()).hexdigest()
    accounts = budget_accounts(analyst_id=actor.actor_id, dataset=dataset, period=period, lock=True)
    try:
        budget_check(accounts, epsilon)
    except BudgetExhausted:
        return {"value": None, "error_95": None, "epsilon": 0.0, "note": "budget exhausted: not released"}
    noisy = max(geometric_noise(excluded, epsilon=eps_value, sensitivity=1), 0)
    result = {"value": noisy, "error_95": geometric_half_width(eps_value, 1), "epsilon": float(epsilon)}
    budget_debit(accounts, epsilon)
    release = DpRelease.objects.create(
        analyst_id=actor.actor_id,
        dataset=dataset,
        period_start=period[0],
        spec_hash=spec_hash,
        metric="export_exclusions",
        spec={"export_id": str(export.id)},
        result=result,
        epsilon=epsilon,
    )
    BudgetCharge.objects.bulk_create(
        [BudgetCharge(account=a, release=release, epsilon=epsilon) for a in (accounts.analyst, accounts.dataset)]
    )
    return result


def export_build(*, export_id: uuid.UUID | str) -> SegmentExport:
    """Build one export (worker). Idempotent: anything but a pending export is left alone."""
    from privacy.crypto import seal

    with transaction.atomic():
        export = SegmentExport.objects.select_for_update().get(id=export_id)
        if export.status != SegmentExport.Status.PENDING:
            return export
        actor = _requester(export)
        rows, members = _contacts(export)
        id_type = EXPORT_CHANNELS[export.channel]
        export.payload = seal(
            subject_id=export.id, field="export", value={"columns": ["profile_id", id_type], "rows": rows}
        )
        export.row_count = len(rows)
        export.excluded_dp = _dp_exclusions(export, actor, members - len(rows))
        export.status = SegmentExport.Status.READY
        export.built_at = timezone.now()
        export.save()
        # issue 10: remember who went to which recipient (GDPR Art. 19 notifications).
        from privacy.compliance.models import Recipient
        from privacy.compliance.services import disclosures_record

        recipient = Recipient.objects.filter(name=export.recipient_name).first()
        if recipient is not None:
            disclosures_record(
                recipient=recipient,
                export_id=export.id,
                purpose=export.purpose,
                subject_ids=[r["profile_id"] for r in rows],
            )
        audit_record(
            actor=actor,
            action=AuditAction.SEGMENT_EXPORT,
            purpose=export.purpose,
            object_type="segment_export",
            object_id=export.id,
            details={
                "segment_id": export.segment_id,
                "channel": export.channel,
                "size": len(rows),
                "members": members,
                "exclusions_epsilon": export.excluded_dp.get("epsilon", 0.0),
                "recipient_id": recipient.pk if recipient else None,
            },
        )
    return export


def export_status(*, actor: Actor, export_id: uuid.UUID | str) -> SegmentExport:
    """An export's state for its requester (no exact counts)."""
    actor.require_role(*SEGMENT_ROLES)
    export = SegmentExport.objects.get(id=export_id)
    if export.requested_by != actor.actor_id:
        raise PermissionDenied("only the requester may see this export", code="not_requester")
    return export


def _shred_payload(export: SegmentExport) -> None:
    from privacy.crypto import shred_subject

    export.payload = None
    shred_subject(subject_id=export.id)


def export_download(*, actor: Actor, export_id: uuid.UUID | str) -> dict:
    """Open the export once for its requester before expiry, then shred it."""
    from privacy.crypto import open_sealed

    actor.require_role(*SEGMENT_ROLES)
    if SegmentExport.objects.get(id=export_id).requested_by != actor.actor_id:
        audit_record(  # outside the download's transaction, so the refusal stays on record
            actor=actor,
            action=AuditAction.EXPORT_DOWNLOAD,
            outcome=Outcome.DENIED,
            object_type="segment_export",
            object_id=str(export_id),
            details={"code": "not_requester"},
        )
        raise PermissionDenied("only the requester may download this export", code="not_requester")
    with transaction.atomic():
        export = SegmentExport.objects.select_for_update().get(id=export_id)
        now = timezone.now()
        if export.status == SegmentExport.Status.READY and export.expires_at <= now:
            raise ExportUnavailable("export_expired", "the export has expired (the scheduled refresh shreds it)")
        if export.status != SegmentExport.Status.READY:
            raise ExportUnavailable(f"export_{export.status}", f"the export is {export.status}")
        content = open_sealed(subject_id=export.id, field="export", blob=bytes(export.payload))
        _shred_payload(export)
        export.status = SegmentExport.Status.DOWNLOADED
        export.downloaded_at = now
        export.save(update_fields=["payload", "status", "downloaded_at"])
        audit_record(
            actor=actor,
            action=AuditAction.EXPORT_DOWNLOAD,
            purpose=export.purpose,
            object_type="segment_export",
            object_id=export.id,
            details={"segment_id": export.segment_id, "size": len(content["rows"])},
        )
    return content


def exports_expire(*, now=None) -> int:
    """Shred ready exports past their expiry (scheduled). Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    for export_id in SegmentExport.objects.filter(status=SegmentExport.Status.READY, expires_at__lte=now).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            export = SegmentExport.objects.select_for_update().get(id=export_id)
            if export.status != SegmentExport.Status.READY:
                continue
            _shred_payload(export)
            export.status = SegmentExport.Status.EXPIRED
            export.save(update_fields=["payload", "status"])
            expired += 1
    return expired
