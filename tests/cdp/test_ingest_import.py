"""import_events: JSON Lines and CSV through the pipeline, resumable, with a rejection summary."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cdp.demo import seed_traits
from cdp.models import Event, Source
from cdp.synthetic import generate
from privacy.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    seed_traits()
    return Source.objects.create(name="legacy", channel="crm")


def run(*args) -> str:
    out = StringIO()
    call_command("import_events", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_jsonl_import_is_resumable_and_summarises_rejections(source, tmp_path):
    records = generate(customers=20, seed=3).records
    lines = [json.dumps(r.message, ensure_ascii=False) for r in records]
    lines.insert(3, "{not json")
    lines.insert(5, json.dumps({"type": "identify", "timestamp": "2026-01-01T00:00:00Z"}))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    out = run(str(path), "--source", "legacy", "--batch-size", "10")
    assert "38 accepted" in out and "rejected invalid_message: 1" in out and "rejected missing_message_id: 1" in out
    assert Event.objects.count() == 38
    # The file grows (or the import was interrupted): a rerun continues after the checkpoint.
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run(str(path), "--source", "legacy", "--batch-size", "10")
    assert "resumed after line 40" in out and "duplicate" not in out
    assert Event.objects.count() == len(records)
    # Starting over is safe: idempotency turns everything into duplicates.
    out = run(str(path), "--source", "legacy", "--restart")
    assert f"{len(records)} duplicate" in out
    assert AuditEntry.objects.filter(action="ingest.batch").count() > 3


def test_csv_import_converts_types_by_the_registry(source, tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text(
        "message_id,type,timestamp,event,phone,email,traits.city,properties.amount,properties.product_category\n"
        "p1,track,2026-01-01T10:00:00Z,purchase,13812345678,,Shanghai,99.5,beauty\n"
        "p2,identify,2026-01-02T10:00:00Z,,13812345678,li@example.cn,Beijing,,\n"
        "p3,track,2026-01-03T10:00:00Z,purchase,12,,,,\n",
        encoding="utf-8",
    )
    out = run(str(path), "--source", "legacy")
    assert "2 accepted" in out and "rejected invalid_phone: 1" in out
    assert Event.objects.get(message_id="p1").properties == {"amount": 99.5, "product_category": "beauty"}


def test_bad_arguments_are_command_errors(source, tmp_path):
    with pytest.raises(CommandError):
        run(str(tmp_path / "missing.jsonl"), "--source", "legacy")
    path = tmp_path / "x.jsonl"
    path.write_text("")
    with pytest.raises(CommandError):
        run(str(path), "--source", "nope")
    with pytest.raises(CommandError):
        run(str(path), "--source", "legacy", "--batch-size", "5000")
