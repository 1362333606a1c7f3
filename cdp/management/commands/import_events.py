"""Import messages from a JSON Lines or CSV file through the ingestion pipeline, resumably."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cdp.actor import Actor
from cdp.models import Source, TraitDefinition
from cdp.services.ingest import ingest_batch
from identity.registry import identifier_types

CSV_FIELDS = ("message_id", "type", "timestamp", "channel", "event")


def _csv_value(definition: TraitDefinition | None, text: str):
    """CSV cells are text: convert to the registry's type so validation sees real values."""
    if definition is None or text == "":
        return text
    try:
        if definition.data_type == TraitDefinition.DataType.INTEGER:
            return int(text)
        if definition.data_type == TraitDefinition.DataType.DECIMAL:
            return float(text)
        if definition.data_type == TraitDefinition.DataType.BOOLEAN:
            return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)
    except ValueError:
        return text
    return text


class Command(BaseCommand):
    help = (
        "Import events from FILE (JSON Lines: one message per line; or CSV with columns message_id, type, "
        "timestamp, channel, event, one column per identifier type such as email or phone, and traits.<key> / "
        "properties.<key> columns) as source NAME, through the same pipeline as POST /api/v1/ingest. "
        "Resumable: a checkpoint (var/import-checkpoints/) records the last line done, and idempotency by "
        "message_id covers the rest. Prints a summary of results and rejections by reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .jsonl/.ndjson or .csv file")
        parser.add_argument("--source", required=True, help="name of an existing source (its channel is the default)")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file extension")
        parser.add_argument(
            "--batch-size", type=int, default=500, help="messages per batch (max CDP_INGEST_MAX_MESSAGES)"
        )
        parser.add_argument("--restart", action="store_true", help="ignore the checkpoint and start from line 1")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(
        self,
        *args,
        file: str,
        source: str,
        format: str | None,
        batch_size: int,
        restart: bool,
        no_progress: bool,
        **options,
    ):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        source_obj = Source.objects.filter(name=source).first()
        if source_obj is None:
            raise CommandError(f"no source named '{source}' (create it with create_api_key --role source)")
        if not 1 <= batch_size <= settings.CDP_INGEST_MAX_MESSAGES:
            raise CommandError(f"--batch-size must be between 1 and {settings.CDP_INGEST_MAX_MESSAGES}")
        kind = format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
        checkpoint = self._checkpoint_path(path, source)
        done = 0 if restart or not checkpoint.exists() else json.loads(checkpoint.read_text())["line"]
        total_lines = sum(1 for _ in path.open(encoding="utf-8")) - (1 if kind == "csv" else 0)
        actor = Actor.system("import_events")
        totals: Counter = Counter()
        rejections: Counter = Counter()
        batch: list = []
        last_line = done
        with tqdm(total=total_lines, initial=done, unit="msg", desc="import", disable=no_progress) as bar:
            for line_no, message in self._read(path, kind):
                if line_no <= done:
                    continue
                batch.append(message)
                last_line = line_no
                if len(batch) >= batch_size:
                    self._send(actor, source_obj, batch, totals, rejections)
                    checkpoint.write_text(json.dumps({"line": last_line}))
                    bar.update(len(batch))
                    batch = []
            if batch:
                self._send(actor, source_obj, batch, totals, rejections)
                checkpoint.write_text(json.dumps({"line": last_line}))
                bar.update(len(batch))
        if done:
            self.stdout.write(f"resumed after line {done} (checkpoint {checkpoint})")
        self.stdout.write(
            "imported: " + (", ".join(f"{n} {status}" for status, n in sorted(totals.items())) or "nothing new")
        )
        for code, n in rejections.most_common():
            self.stdout.write(f"  rejected {code}: {n}")

    @staticmethod
    def _checkpoint_path(path: Path, source: str) -> Path:
        key = hashlib.sha256(f"{path.resolve()}|{source}".encode()).hexdigest()[:16]
        folder = Path(settings.VAR_DIR) / "import-checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}.json"

    @staticmethod
    def _send(actor, source, batch, totals: Counter, rejections: Counter) -> None:
        result = ingest_batch(actor=actor, messages=batch, source=source)
        totals.update(result.counts)
        rejections.update(result.rejections_by_code())

    def _read(self, path: Path, kind: str) -> Iterator[tuple[int, object]]:
        with path.open(encoding="utf-8", newline="") as handle:
            if kind == "jsonl":
                for line_no, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue  # blank lines are not messages
                    try:
                        yield line_no, json.loads(line)
                    except json.JSONDecodeError:
                        yield line_no, "malformed JSON line"  # the pipeline rejects it as invalid_message
                return
            traits = {d.key: d for d in TraitDefinition.objects.filter(kind=TraitDefinition.Kind.TRAIT)}
            properties = {d.key: d for d in TraitDefinition.objects.filter(kind=TraitDefinition.Kind.PROPERTY)}
            id_types = identifier_types()
            for line_no, row in enumerate(csv.DictReader(handle), start=1):
                message: dict = {k: row[k] for k in CSV_FIELDS if row.get(k)}
                message["identifiers"] = {k: v for k, v in row.items() if k in id_types and v}
                for column, value in row.items():
                    if column and column.startswith("traits.") and value != "":
                        key = column.split(".", 1)[1]
                        message.setdefault("traits", {})[key] = _csv_value(traits.get(key), value)
                    elif column and column.startswith("properties.") and value != "":
                        key = column.split(".", 1)[1]
                        message.setdefault("properties", {})[key] = _csv_value(properties.get(key), value)
                yield line_no, message
