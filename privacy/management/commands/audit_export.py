import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cdp.actor import Actor
from privacy.audit.export import (
    FORMATS,
    AuditExportError,
    ExportStats,
    audit_export_plan,
    export_chunks,
    export_manifest,
)


class Command(BaseCommand):
    help = (
        "Export the audit trail as CSV or JSON Lines, streamed in constant memory, ending at a signed "
        "checkpoint (the head is signed first if it moved). Writes FILE and FILE.manifest.json (count, first "
        "and last seq and hash, the checkpoint with its Ed25519 signature and public key, the file's SHA-256). "
        "Verify offline with: python docs/verify_audit_export.py FILE FILE.manifest.json"
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="csv or jsonl")
        parser.add_argument("--out", required=True, help="file to write; the manifest goes to OUT.manifest.json")
        parser.add_argument("--from-seq", type=int, default=1, help="first entry (default 1)")
        parser.add_argument("--to-seq", type=int, default=None, help="a checkpoint's seq (default: the newest)")
        parser.add_argument("--chunk-size", type=int, default=5000, help="rows per database round trip")

    def handle(self, *args, format: str, out: str, from_seq: int, to_seq: int | None, chunk_size: int, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        path = Path(out)
        if not path.parent.is_dir():
            raise CommandError(f"directory {path.parent} does not exist")
        try:
            plan = audit_export_plan(actor=Actor.system("audit_export"), fmt=format, from_seq=from_seq, to_seq=to_seq)
        except AuditExportError as exc:
            raise CommandError(str(exc)) from exc
        stats = ExportStats()
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as fh:
            for chunk in export_chunks(plan, stats, chunk_size=chunk_size):
                fh.write(chunk)
        tmp.replace(path)
        manifest = export_manifest(plan, stats) | {"filename": path.name}
        manifest_path = path.with_name(path.name + ".manifest.json")
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.stdout.write(
            f"Wrote {stats.count} entries (seq {plan.from_seq}..{plan.to_seq}) to {path} and {manifest_path}"
        )
