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


def checkpoint_message(seq: int, hash_hex: str, signed_at: str) -> bytes:
    """The bytes an audit checkpoint signs (Ed25519). `signed_at` in format_time form."""
    return f"cdp-audit-checkpoint:v1:{seq}:{hash_hex}:{signed_at}".encode()


def key_id(public_key_hex: str) -> str:
    """Short, stable name of a public key: first 16 hex of SHA-256 over its raw bytes."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


# Columns to read for hashing, exporting and verifying (values() rows, no model instances).
ROW_COLUMNS = (*CHAINED_FIELDS, "prev_hash", "hash")


def row_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The chained fields of a `values(*ROW_COLUMNS)` row in exported form (fast path)."""
    fields = dict(row)
    fields["occurred_at"] = format_time(row["occurred_at"])
    fields["subject_id"] = str(row["subject_id"]) if row["subject_id"] else ""
    fields.pop("prev_hash", None)
    fields.pop("hash", None)
    return fields


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
