"""The canonical serialisation and hash of an audit entry.

Kept dependency-free (plain dicts in, hex out) so that the offline verifier in docs/ can use
the same rule: SHA-256 over UTF-8 of prev_hash + "\n" + JSON with sorted keys and no spaces.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "role",
    "action",
    "outcome",
    "subject_id",
    "purpose",
    "legal_basis",
    "object_type",
    "object_id",
    "request_id",
    "client_hash",
    "details",
)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: dict[str, Any]) -> str:
    """Canonical JSON of the chained fields; values already in their exported form."""
    return json.dumps({k: fields[k] for k in CHAINED_FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical(fields)).encode("utf-8")).hexdigest()


def exported_fields(entry: Any) -> dict[str, Any]:
    """The chained fields of a model instance in exported (JSON) form."""
    return {
        "seq": entry.seq,
        "occurred_at": format_time(entry.occurred_at),
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "role": entry.role,
        "action": entry.action,
        "outcome": entry.outcome,
        "subject_id": str(entry.subject_id) if entry.subject_id else "",
        "purpose": entry.purpose,
        "legal_basis": entry.legal_basis,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "request_id": entry.request_id,
        "client_hash": entry.client_hash,
        "details": entry.details,
    }
