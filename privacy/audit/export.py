"""Streaming exports of the audit trail (CSV, JSON Lines) and their manifests.

Decisions (docs/adr/0002-audit-chain.md):
- An export always ends at a signed checkpoint: `to_seq` is a checkpoint's seq (by default the
  head, signed on the spot if it moved), so the last exported hash is vouched for by an Ed25519
  signature and the export is byte-for-byte reproducible.
- The manifest is a separate document, not a trailer: the file's SHA-256 is known only after the
  last byte, and a trailer would make CSV unparsable. `manage.py audit_export` writes
  FILE and FILE.manifest.json in one pass; the API serves the file at /audit/export and the
  manifest for the same range at /audit/export/manifest (which re-streams to hash it).
- Rows are read with `values().iterator(chunk_size)` and written a chunk at a time, so memory
  stays flat for millions of rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from cdp.actor import Actor, Role
from privacy.audit.actions import AuditAction
from privacy.audit.chain import CHAINED_FIELDS, ROW_COLUMNS, format_time, row_fields
from privacy.audit.checkpoints import checkpoint_create
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.writer import audit_record

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
EXPORT_ROLES = (Role.COMPLIANCE, Role.ADMIN, Role.SYSTEM)
CHUNK_SIZE = 5000
HASH_RULE = 'sha256(utf8(prev_hash + "\\n" + json(fields, sort_keys, separators=(",", ":"), ensure_ascii=False)))'


def read_snapshot():
    """A transaction around a long streaming read on PostgreSQL: the server-side cursor then reads
    one consistent snapshot and is not materialised whole on the server (as a WITH HOLD cursor in
    autocommit mode would be). Not on SQLite, where any transaction takes the write lock."""
    return transaction.atomic() if connection.vendor == "postgresql" else nullcontext()


class AuditExportError(ValueError):
    """The export was asked for in a way that cannot be served (message safe to show)."""


@dataclass(frozen=True)
class ExportPlan:
    format: str
    from_seq: int
    to_seq: int
    checkpoint: AuditCheckpoint | None

    @property
    def filename(self) -> str:
        return f"audit-{self.from_seq}-{self.to_seq}.{self.format}"

    @property
    def content_type(self) -> str:
        return FORMATS[self.format]


@dataclass
class ExportStats:
    """Filled in while an export streams: what the manifest needs."""

    count: int = 0
    first: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    sha256: Any = field(default_factory=hashlib.sha256)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def audit_export_plan(*, actor: Actor, fmt: str, from_seq: int = 1, to_seq: int | None = None) -> ExportPlan:
    """Fix the range of an export and record it (`audit.export`).

    Without `to_seq` the export runs to the newest checkpoint, signing the head first if it has
    moved; with it, `to_seq` must be a checkpoint's seq (so the export can be re-downloaded and
    matched to its manifest later). Raises AuditExportError for a bad format or range.
    """
    actor.require_role(*EXPORT_ROLES)
    if fmt not in FORMATS:
        raise AuditExportError(f"format must be one of: {', '.join(FORMATS)}")
    if to_seq is None:
        checkpoint_create(actor=actor)
        checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    else:
        checkpoint = AuditCheckpoint.objects.filter(seq=to_seq).first()
        if checkpoint is None:
            raise AuditExportError(f"to_seq {to_seq} is not a checkpoint; exports end at a signed checkpoint")
    last = checkpoint.seq if checkpoint else 0
    if from_seq < 1 or from_seq > last + 1:
        raise AuditExportError(f"from_seq must be between 1 and {last + 1}")
    plan = ExportPlan(format=fmt, from_seq=from_seq, to_seq=last, checkpoint=checkpoint)
    audit_record(
        actor=actor,
        action=AuditAction.AUDIT_EXPORT,
        object_type="audit_export",
        object_id=f"{plan.from_seq}-{plan.to_seq}",
        details={"format": fmt, "from_seq": plan.from_seq, "to_seq": plan.to_seq},
    )
    return plan


def export_chunks(
    plan: ExportPlan, stats: ExportStats | None = None, *, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The export's bytes, a chunk of rows at a time. Updates `stats` (count, first, last, SHA-256)."""
    stats = stats if stats is not None else ExportStats()
    rows = (
        AuditEntry.objects.filter(seq__gte=plan.from_seq, seq__lte=plan.to_seq)
        .order_by("seq")
        .values(*ROW_COLUMNS)
        .iterator(chunk_size=chunk_size)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if plan.format == "csv" else None
    if writer is not None:
        writer.writerow(ROW_COLUMNS)
    pending = 0
    with read_snapshot():
        for row in rows:
            fields = row_fields(row)
            if writer is not None:
                fields["details"] = _dumps(fields["details"])
                writer.writerow([*(fields[name] for name in CHAINED_FIELDS), row["prev_hash"], row["hash"]])
            else:
                buffer.write(_dumps({**fields, "prev_hash": row["prev_hash"], "hash": row["hash"]}))
                buffer.write("\n")
            if not stats.count:
                stats.first = {"seq": row["seq"], "prev_hash": row["prev_hash"], "hash": row["hash"]}
            stats.count += 1
            stats.last = {"seq": row["seq"], "hash": row["hash"]}
            pending += 1
            if pending >= chunk_size:
                chunk = buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
                pending = 0
                stats.sha256.update(chunk)
                yield chunk
        chunk = buffer.getvalue().encode("utf-8")
        if chunk:
            stats.sha256.update(chunk)
            yield chunk


def export_manifest(plan: ExportPlan, stats: ExportStats) -> dict[str, Any]:
    """The manifest of a finished export (call after export_chunks is exhausted)."""
    cp = plan.checkpoint
    return {
        "manifest_version": 1,
        "format": plan.format,
        "filename": plan.filename,
        "from_seq": plan.from_seq,
        "to_seq": plan.to_seq,
        "count": stats.count,
        "first": stats.first or None,
        "last": stats.last or None,
        "sha256": stats.sha256.hexdigest(),
        "hash_rule": HASH_RULE,
        "columns": list(ROW_COLUMNS),
        "checkpoint": (
            {
                "seq": cp.seq,
                "hash": cp.hash,
                "signed_at": format_time(cp.signed_at),
                "signature": cp.signature,
                "key_id": cp.key_id,
                "public_key": cp.public_key,
                "message": f"cdp-audit-checkpoint:v1:{cp.seq}:{cp.hash}:{format_time(cp.signed_at)}",
                "algorithm": "Ed25519",
            }
            if cp
            else None
        ),
        "generated_at": format_time(timezone.now()),
    }


def audit_export_manifest(*, actor: Actor, fmt: str, from_seq: int = 1, to_seq: int | None = None) -> dict[str, Any]:
    """Plan an export, stream it through SHA-256 without keeping it, and return its manifest."""
    plan = audit_export_plan(actor=actor, fmt=fmt, from_seq=from_seq, to_seq=to_seq)
    stats = ExportStats()
    for _ in export_chunks(plan, stats):
        pass
    return export_manifest(plan, stats)
