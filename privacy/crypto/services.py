"""Audited key operations: crypto-shredding one subject, rotating the KEK, key status.

Why these live apart from the primitives in datakeys.py: the primitives are called from inside
other services' transactions (erasure, ingestion); these are the entry points that check the
actor's role and write the audit entry. ADR: docs/adr/0004-key-hierarchy.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from cdp.actor import Actor, PermissionDenied, Role
from privacy.audit import AuditAction, audit_record
from privacy.audit.actions import Outcome
from privacy.crypto.datakeys import _as_uuid, shred_subject, wrap_aad
from privacy.crypto.errors import CryptoError
from privacy.crypto.keyring import Kms, get_kms
from privacy.crypto.models import SubjectKey

logger = logging.getLogger(__name__)

SHRED_ROLES = (Role.STEWARD, Role.COMPLIANCE, Role.SYSTEM)
ROTATE_ROLES = (Role.ADMIN, Role.SYSTEM)
DEFAULT_BATCH_SIZE = 500


def _require_role(actor: Actor, roles: tuple[Role, ...], action: AuditAction, **audit: object) -> None:
    """Refuse the wrong role with an audited denial (committed even though the caller fails)."""
    try:
        actor.require_role(*roles)
    except PermissionDenied:
        audit_record(actor=actor, action=action, outcome=Outcome.DENIED, **audit)  # type: ignore[arg-type]
        raise


def live_keys() -> QuerySet[SubjectKey]:
    """Data keys that still exist (not shredded)."""
    return SubjectKey.objects.filter(shredded_at__isnull=True, wrapped__isnull=False)


def subject_shred(*, actor: Actor, subject_id: uuid.UUID | str) -> bool:
    """Crypto-shred one subject: destroy their data key so nothing sealed for them opens again.

    Why only the key: every copy of the subject's ciphertext (rows, replicas, dumps, backups)
    becomes unreadable at once, which deleting rows cannot achieve. Deleting the rows and
    keeping the suppression entry is the erasure service's job. Idempotent; returns True when a
    live key was destroyed by this call. Roles: steward, compliance, system.
    """
    subject = _as_uuid(subject_id)
    _require_role(actor, SHRED_ROLES, AuditAction.KEY_SHRED, subject_id=subject, object_type="subject_key")
    with transaction.atomic():
        destroyed = shred_subject(subject_id=subject)
        audit_record(
            actor=actor,
            action=AuditAction.KEY_SHRED,
            subject_id=subject,
            object_type="subject_key",
            object_id=str(subject),
            details={"destroyed": destroyed},
        )
    return destroyed


@dataclass
class RotationResult:
    """What one run of kek_rotate did. `remaining` counts keys still under another KEK."""

    to_version: int
    from_versions: dict[int, int] = field(default_factory=dict)
    rewrapped: int = 0
    failed: int = 0
    batches: int = 0
    remaining: int = 0
    interrupted: bool = False

    def audit_details(self) -> dict[str, object]:
        return {
            "to_version": self.to_version,
            "from_versions": {str(v): n for v, n in sorted(self.from_versions.items())},
            "rewrapped": self.rewrapped,
            "failed": self.failed,
            "batches": self.batches,
            "remaining": self.remaining,
            "interrupted": self.interrupted,
        }


def keys_to_rewrap(target_version: int) -> QuerySet[SubjectKey]:
    return live_keys().exclude(kek_version=target_version)


def kek_rotate(
    *,
    actor: Actor,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
    kms: Kms | None = None,
) -> RotationResult:
    """Re-wrap every live data key that is not under the active KEK; the data is not touched.

    Each batch is one transaction: rows are taken in subject-id order with SELECT ... FOR
    UPDATE SKIP LOCKED on PostgreSQL (two runs share the work, a concurrent shred waits for the
    batch), unwrapped with their old KEK and wrapped with the active one. An interruption loses
    at most the batch in flight; the next run continues with what is left (idempotent).
    `max_batches` stops early on purpose (throttled rotation); `progress(n)` is called inside
    each batch's transaction, before it commits, with the number of rows in the batch, so an
    exception it raises (Ctrl-C in a progress bar) rolls that batch back. A key whose KEK is no
    longer in the ring or does not open is counted in `failed` and left as it is. One
    `key.rotate` audit entry per run, also for an interrupted run (outcome error).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    _require_role(actor, ROTATE_ROLES, AuditAction.KEY_ROTATE, object_type="kek")
    kms = kms or get_kms()
    target = kms.active_version
    result = RotationResult(to_version=target)
    result.from_versions = dict(
        keys_to_rewrap(target).values_list("kek_version").annotate(n=Count("subject_id")).order_by("kek_version")
    )
    lock_rows = connection.features.has_select_for_update_skip_locked
    last: uuid.UUID | None = None
    try:
        while max_batches is None or result.batches < max_batches:
            with transaction.atomic():
                query = keys_to_rewrap(target).order_by("subject_id")
                if last is not None:
                    query = query.filter(subject_id__gt=last)
                if lock_rows:
                    query = query.select_for_update(skip_locked=True)
                rows = list(query[:batch_size])
                if not rows:
                    break
                now = timezone.now()
                changed, failed = [], 0
                for row in rows:
                    aad = wrap_aad(row.subject_id, row.dek_version)
                    try:
                        key = kms.unwrap(bytes(row.wrapped), version=row.kek_version, aad=aad)
                    except CryptoError:
                        failed += 1
                        continue
                    row.kek_version, row.wrapped = kms.wrap(key, aad=aad, version=target)
                    row.rewrapped_at = now
                    changed.append(row)
                _save_rewrapped(changed)
                if progress is not None:
                    progress(len(rows))
            last = rows[-1].subject_id
            result.batches += 1
            result.rewrapped += len(changed)
            result.failed += failed
    except BaseException:
        result.interrupted = True
        try:
            _audit_rotation(actor, result, Outcome.ERROR)
        except Exception:  # the database may be what failed; never mask the original error
            logger.exception("could not audit the interrupted KEK rotation")
        raise
    _audit_rotation(actor, result, Outcome.OK if not result.failed else Outcome.ERROR)
    return result


def _save_rewrapped(rows: list[SubjectKey]) -> None:
    """One executemany UPDATE per batch: Django's bulk_update builds a CASE expression per row and
    made the whole rotation an order of magnitude slower. The `shredded_at IS NULL` guard means
    a key shredded after it was read is never written back, whatever the backend's locking."""
    if not rows:
        return
    meta = SubjectKey._meta
    fields = [meta.get_field(name) for name in ("kek_version", "wrapped", "rewrapped_at", "subject_id")]
    columns = [connection.ops.quote_name(f.column) for f in fields]
    # Only identifiers from the model's own metadata, quoted; every value is a parameter.
    table = connection.ops.quote_name(meta.db_table)
    shredded = connection.ops.quote_name(meta.get_field("shredded_at").column)
    sql = "UPDATE {} SET {} = %s, {} = %s, {} = %s WHERE {} = %s AND {} IS NULL".format(table, *columns, shredded)  # noqa: S608
    params = [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _audit_rotation(actor: Actor, result: RotationResult, outcome: Outcome) -> None:
    result.remaining = keys_to_rewrap(result.to_version).count()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.KEY_ROTATE,
            outcome=outcome,
            object_type="kek",
            object_id=str(result.to_version),
            details=result.audit_details(),
        )


def kek_keys_using(*, version: int) -> int:
    """How many live data keys are still wrapped by KEK `version` (0: it can be retired)."""
    return live_keys().filter(kek_version=version).count()


@dataclass(frozen=True)
class CryptoStatus:
    kek_versions: list[int]
    active_version: int
    data_keys: dict[int, int]  # live data keys per KEK version
    shredded: int

    @property
    def unknown_versions(self) -> list[int]:
        """KEK versions data keys use that this process does not hold (unreadable keys)."""
        return sorted(set(self.data_keys) - set(self.kek_versions))

    @property
    def to_rewrap(self) -> int:
        return sum(n for v, n in self.data_keys.items() if v != self.active_version)


def crypto_status() -> CryptoStatus:
    """Key versions and counts (no key material, no subject ids): for crypto_status and ops."""
    kms = get_kms()
    per_version = dict(live_keys().values_list("kek_version").annotate(n=Count("subject_id")).order_by("kek_version"))
    shredded = SubjectKey.objects.filter(shredded_at__isnull=False).count()
    return CryptoStatus(
        kek_versions=list(kms.versions()),
        active_version=kms.active_version,
        data_keys=per_version,
        shredded=shredded,
    )
