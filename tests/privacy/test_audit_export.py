"""Exports end at a signed checkpoint and verify offline with docs/verify_audit_export.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from cdp.actor import Actor
from privacy.audit import AuditAction, audit_record
from privacy.audit.checkpoints import public_key_hex
from privacy.audit.export import ExportStats, audit_export_plan, export_chunks
from privacy.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "verify_audit_export.py"


def offline_verify(export: Path, *extra: str) -> subprocess.CompletedProcess:
    manifest = export.with_name(export.name + ".manifest.json")
    return subprocess.run(
        [sys.executable, str(VERIFIER), str(export), str(manifest), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def entries():
    actor = Actor.system("tests")
    for i in range(25):
        audit_record(
            actor=actor,
            action=AuditAction.PROFILE_READ,
            subject_id=uuid.uuid4(),
            purpose="support",
            object_id=f'obj,{i}\n"quoted"',  # CSV quoting must round-trip
            details={"i": i, "epsilon": 0.25, "label": "状态", "nested": {"k": [1, 2]}},
        )


def _export(tmp_path: Path, fmt: str, *args: str) -> Path:
    out = tmp_path / f"audit.{fmt}"
    call_command("audit_export", "--format", fmt, "--out", str(out), "--chunk-size", "7", *args)
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_verifies_offline(entries, tmp_path, fmt):
    out = _export(tmp_path, fmt)
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["count"] == 25 and manifest["from_seq"] == 1 and manifest["to_seq"] == 25
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["checkpoint"]["seq"] == 25 == manifest["last"]["seq"]
    assert manifest["checkpoint"]["public_key"] == public_key_hex()
    done = offline_verify(out, "--public-key", public_key_hex())
    assert done.returncode == 0, done.stderr
    assert "25 entries" in done.stdout and "pinned key" in done.stdout
    # The export itself is audited, after the range it covers.
    assert AuditEntry.objects.filter(action="audit.export").count() == 1


def test_export_from_a_later_seq_verifies_offline(entries, tmp_path):
    out = _export(tmp_path, "jsonl", "--from-seq", "10")
    done = offline_verify(out)
    assert done.returncode == 0, done.stderr
    assert "16 entries" in done.stdout


def _rewrite(out: Path, lines: list[str], *, fix_sha: bool = True) -> None:
    out.write_text("".join(lines), encoding="utf-8")
    if fix_sha:
        manifest_path = out.with_name(out.name + ".manifest.json")
        manifest = json.loads(manifest_path.read_text())
        manifest["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("edit-keep-sha", "SHA-256"),
        ("edit", "seq 5: content does not match its hash"),
        ("delete", "seq 5: missing or out of order"),
        ("swap", "seq 5: missing or out of order"),
        ("cut-tail", "entries; the manifest says 25"),
        ("wrong-key", "different key"),
        ("forged-signature", "signature does not verify"),
    ],
)
def test_tampered_export_fails_offline(entries, tmp_path, case, message):
    out = _export(tmp_path, "jsonl")
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    extra: list[str] = ["--public-key", public_key_hex()]
    if case == "edit-keep-sha":
        _rewrite(out, [lines[0].replace('"support"', '"marketing"'), *lines[1:]], fix_sha=False)
    elif case == "edit":
        lines[4] = lines[4].replace('"support"', '"marketing"')
        _rewrite(out, lines)
    elif case == "delete":
        _rewrite(out, lines[:4] + lines[5:])
    elif case == "swap":
        lines[4], lines[5] = lines[5], lines[4]
        _rewrite(out, lines)
    elif case == "cut-tail":
        _rewrite(out, lines[:-3])
    elif case == "wrong-key":
        extra = ["--public-key", "ab" * 32]
    elif case == "forged-signature":
        manifest_path = out.with_name(out.name + ".manifest.json")
        manifest = json.loads(manifest_path.read_text())
        manifest["checkpoint"]["signed_at"] = "2030-01-01T00:00:00.000000Z"
        manifest_path.write_text(json.dumps(manifest))
    done = offline_verify(out, *extra)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr


def test_export_streams_in_chunks_and_matches_its_stats(entries):
    plan = audit_export_plan(actor=Actor.system("tests"), fmt="csv")
    stats = ExportStats()
    chunks = list(export_chunks(plan, stats, chunk_size=4))
    assert len(chunks) == 7  # header rides with the first chunk of 4 rows: ceil(25 / 4)
    body = b"".join(chunks)
    assert stats.count == 25 and stats.sha256.hexdigest() == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv", "--to-seq", "3"], "not a checkpoint"),
        (["--format", "csv", "--from-seq", "99"], "from_seq must be between"),
        (["--format", "csv", "--chunk-size", "0"], "chunk-size"),
    ],
)
def test_export_command_refuses_bad_ranges(entries, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("audit_export", "--out", str(tmp_path / "x"), *args)
    assert not (tmp_path / "x").exists()


def test_empty_trail_exports_an_empty_file(db, tmp_path):
    out = _export(tmp_path, "jsonl")
    assert out.read_bytes() == b""
    assert offline_verify(out).returncode == 0
