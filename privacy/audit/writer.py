"""Writing audit entries: one serialised chain, in the caller's transaction.

Concurrency: every writer takes one chain lock for the rest of its transaction (a PostgreSQL
transaction-scoped advisory lock; on SQLite the database's single write lock, taken up front
by IMMEDIATE transactions). The lock serialises appends, so concurrent writers still leave one
valid chain; it is held only from the audit write to commit, which is why services write the
entry as their last step. ADR: docs/adr/0002-audit-chain.md.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from cdp.actor import Actor
from privacy.audit.actions import AuditAction, Outcome
from privacy.audit.chain import GENESIS_HASH, entry_hash, exported_fields
from privacy.audit.models import AuditEntry

# Arbitrary constant that names the chain lock among PostgreSQL advisory locks.
CHAIN_LOCK_KEY = 0x6364705F61756469  # "cdp_audi"
_MAX_DETAILS_BYTES = 4096
_SCALARS = (str, int, float, bool, type(None))
# Floats must survive a round trip through PostgreSQL jsonb unchanged, or the stored entry would
# no longer hash to its recorded hash: jsonb prints numbers without exponents, so 1e+16 comes back
# as the integer 10000000000000000. Below 1e15 Python and jsonb agree.
_MAX_FLOAT = 1e15
# Defence in depth: a string shaped like an e-mail address is personal data, never an id or code.
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# Column widths of AuditEntry: checked here so SQLite (which ignores them) refuses what PostgreSQL would.
_MAX_LENGTHS = {
    "actor_kind": 16,
    "actor_id": 128,
    "role": 16,
    "purpose": 64,
    "legal_basis": 32,
    "object_type": 32,
    "object_id": 64,
    "request_id": 64,
    "client_hash": 64,
}


class AuditDetailsError(ValueError):
    """Details must be small JSON of counts, codes and ids: never personal data."""


class AuditFieldError(ValueError):
    """A field of the entry is too long, contains NUL, or looks like personal data."""


def _check_text(name: str, value: str) -> None:
    if "\x00" in value:
        raise AuditFieldError(f"audit field {name} contains a NUL character")
    if _EMAIL.search(value):
        raise AuditFieldError(f"audit field {name} looks like an e-mail address; audit entries hold no personal data")


def _check_details(details: dict[str, Any]) -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if not isinstance(key, str):
                    raise AuditDetailsError("details keys must be strings")
                try:
                    _check_text("details key", key)
                except AuditFieldError as exc:
                    raise AuditDetailsError(str(exc)) from None
                walk(inner, f"{path}.{key}")
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner, path)
        elif not isinstance(value, _SCALARS):
            raise AuditDetailsError(f"details values must be JSON scalars, got {type(value).__name__}")
        elif isinstance(value, float) and not (math.isfinite(value) and abs(value) < _MAX_FLOAT):
            raise AuditDetailsError(f"details float at {path} must be finite and below 1e15 in magnitude")
        elif isinstance(value, str):
            try:
                _check_text(f"details{path}", value)
            except AuditFieldError as exc:
                raise AuditDetailsError(str(exc)) from None

    walk(details, "")
    if len(json.dumps(details, default=str)) > _MAX_DETAILS_BYTES:
        raise AuditDetailsError("details are too large for an audit entry")


def _normalised(value: Any) -> Any:
    """-0.0 becomes 0.0: jsonb has no negative zero, and the stored entry must hash as written."""
    if isinstance(value, dict):
        return {key: _normalised(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_normalised(inner) for inner in value]
    if isinstance(value, float) and value == 0.0:
        return 0.0
    return value


def _check_fields(fields: dict[str, str]) -> None:
    for name, value in fields.items():
        limit = _MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            raise AuditFieldError(f"audit field {name} is longer than {limit} characters")
        _check_text(name, value)


def lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


@dataclass(frozen=True)
class AuditItem:
    """One entry to append with `audit_record_many` (the arguments of `audit_record`)."""

    action: AuditAction | str
    outcome: Outcome | str = Outcome.OK
    subject_id: uuid.UUID | str | None = None
    purpose: str | None = None
    legal_basis: str = ""
    object_type: str = ""
    object_id: str | int = ""
    details: dict[str, Any] | None = None


def audit_record(
    *,
    actor: Actor,
    action: AuditAction | str,
    outcome: Outcome | str = Outcome.OK,
    subject_id: uuid.UUID | str | None = None,
    purpose: str | None = None,
    legal_basis: str = "",
    object_type: str = "",
    object_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the current transaction (or its own).

    `purpose` defaults to the actor's purpose. Raises ValueError for an action outside the
    vocabulary, details that are not small JSON scalars (or are not stable through jsonb), a
    field longer than its column, and text shaped like an e-mail address (AuditFieldError).
    """
    item = AuditItem(action, outcome, subject_id, purpose, legal_basis, object_type, object_id, details)
    return audit_record_many(actor=actor, items=[item])[0]


def audit_record_many(*, actor: Actor, items: list[AuditItem]) -> list[AuditEntry]:
    """Append several entries of one actor, in order, under one chain lock and one INSERT.

    For batch paths (an ingestion batch and its merges): each entry is checked exactly as
    `audit_record` checks it, and any bad one raises before anything is written.
    """
    if not items:
        return []
    entries = [_entry(actor, item) for item in items]
    # No savepoint: inside a caller's transaction a failed audit write must fail the whole change
    # anyway, and SAVEPOINT/RELEASE would cost two round trips on every audited operation.
    with transaction.atomic(savepoint=False):
        lock_chain()
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        now = timezone.now()  # taken under the lock, so time never runs backwards along the chain
        for entry in entries:
            entry.seq, entry.prev_hash, entry.occurred_at = seq, prev_hash, now
            entry.hash = entry_hash(prev_hash, exported_fields(entry))
            seq, prev_hash = seq + 1, entry.hash
        if len(entries) == 1:
            entries[0].save(force_insert=True)
        else:
            AuditEntry.objects.bulk_create(entries)
        return entries


def _entry(actor: Actor, item: AuditItem) -> AuditEntry:
    """Validate one item and build its (not yet chained) row."""
    if item.action not in AuditAction.values:
        raise ValueError(f"unknown audit action {item.action!r}")
    if item.outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {item.outcome!r}")
    details = dict(item.details or {})
    _check_details(details)
    purpose = actor.purpose if item.purpose is None else item.purpose
    _check_fields(
        {
            "actor_kind": str(actor.kind),
            "actor_id": actor.actor_id,
            "role": str(actor.role),
            "purpose": purpose,
            "legal_basis": item.legal_basis,
            "object_type": item.object_type,
            "object_id": str(item.object_id),
            "request_id": actor.request_id,
            "client_hash": actor.client_hash,
        }
    )
    return AuditEntry(
        actor_kind=str(actor.kind),
        actor_id=actor.actor_id,
        role=str(actor.role),
        action=str(item.action),
        outcome=str(item.outcome),
        subject_id=uuid.UUID(str(item.subject_id)) if item.subject_id else None,
        purpose=purpose,
        legal_basis=item.legal_basis,
        object_type=item.object_type,
        object_id=str(item.object_id),
        request_id=actor.request_id,
        client_hash=actor.client_hash,
        details=_normalised(json.loads(json.dumps(details))),
    )
