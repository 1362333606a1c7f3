"""Writing audit entries: one serialised chain, in the caller's transaction.

Concurrency: every writer takes one chain lock for the rest of its transaction (a PostgreSQL
transaction-scoped advisory lock; on SQLite the database's single write lock, taken up front
by IMMEDIATE transactions). The lock serialises appends, so concurrent writers still leave one
valid chain; it is held only from the audit write to commit, which is why services write the
entry as their last step. ADR: docs/adr/0002-audit-chain.md.
"""

from __future__ import annotations

import json
import uuid
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


class AuditDetailsError(ValueError):
    """Details must be small JSON of counts, codes and ids: never personal data."""


def _check_details(details: dict[str, Any]) -> None:
    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if not isinstance(key, str):
                    raise AuditDetailsError("details keys must be strings")
                walk(inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner)
        elif not isinstance(value, _SCALARS):
            raise AuditDetailsError(f"details values must be JSON scalars, got {type(value).__name__}")

    walk(details)
    if len(json.dumps(details, default=str)) > _MAX_DETAILS_BYTES:
        raise AuditDetailsError("details are too large for an audit entry")


def lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


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
    vocabulary or details that are not small JSON scalars.
    """
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    details = dict(details or {})
    _check_details(details)
    with transaction.atomic():
        lock_chain()
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        entry = AuditEntry(
            seq=seq,
            occurred_at=timezone.now(),
            actor_kind=str(actor.kind),
            actor_id=actor.actor_id,
            role=str(actor.role),
            action=str(action),
            outcome=str(outcome),
            subject_id=uuid.UUID(str(subject_id)) if subject_id else None,
            purpose=actor.purpose if purpose is None else purpose,
            legal_basis=legal_basis,
            object_type=object_type,
            object_id=str(object_id),
            request_id=actor.request_id,
            client_hash=actor.client_hash,
            details=json.loads(json.dumps(details)),
            prev_hash=prev_hash,
        )
        entry.hash = entry_hash(prev_hash, exported_fields(entry))
        entry.save(force_insert=True)
        return entry
