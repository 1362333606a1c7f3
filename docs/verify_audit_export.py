#!/usr/bin/env python3
"""Verify an audit-trail export offline: python verify_audit_export.py EXPORT MANIFEST [--public-key HEX]

Standalone on purpose (Python 3.11+ standard library plus `cryptography`), so an auditor can run it
on a machine that has never seen the platform. It checks, in one streaming pass:

1. the export file's SHA-256 equals the manifest's `sha256`;
2. every entry's hash: sha256(utf8(prev_hash + "\\n" + canonical JSON of its fields)), where the
   canonical JSON has sorted keys, no spaces and raw UTF-8 (the rule in privacy/audit/chain.py);
3. the chain: seq numbers consecutive from the manifest's `from_seq`, each prev_hash equal to the
   hash before it, the first prev_hash equal to the manifest's (64 zeros when from_seq is 1);
4. count, first and last seq and hash as the manifest states, and the last entry equal to the
   covering checkpoint's seq and hash;
5. the checkpoint's Ed25519 signature over "cdp-audit-checkpoint:v1:SEQ:HASH:SIGNED_AT".

Pass the platform's public key (GET /api/v1/audit/public-key, hex) with --public-key to pin it;
without it the key in the manifest is used and its key id printed, which proves integrity only
if you compare that id with one you obtained independently. Exit status 0: verified; 1: not.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
COLUMNS = (*CHAINED_FIELDS, "prev_hash", "hash")


class Failed(Exception):
    pass


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(
        {k: fields[k] for k in CHAINED_FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            reader = csv.reader(fh)
            header = next(reader, None)
            if tuple(header or ()) != COLUMNS:
                raise Failed(f"unexpected CSV header: {header}")
            for line_no, values in enumerate(reader, start=2):
                if len(values) != len(COLUMNS):
                    raise Failed(f"line {line_no}: expected {len(COLUMNS)} columns, got {len(values)}")
                row: dict[str, Any] = dict(zip(COLUMNS, values, strict=True))
                try:
                    row["seq"] = int(row["seq"])
                    row["details"] = json.loads(row["details"])
                except ValueError as exc:
                    raise Failed(f"line {line_no}: unreadable seq or details") from exc
                yield row
        elif fmt == "jsonl":
            for line_no, line in enumerate(fh, start=1):
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise Failed(f"line {line_no}: not JSON") from exc
                if not isinstance(row, dict) or set(row) != set(COLUMNS) or not isinstance(row["seq"], int):
                    raise Failed(f"line {line_no}: not an audit entry")
                yield row
        else:
            raise Failed(f"unknown format {fmt!r}")


def verify(export: Path, manifest: dict[str, Any], public_key_hex: str | None) -> str:
    if file_sha256(export) != manifest["sha256"]:
        raise Failed("the file's SHA-256 does not match the manifest: the file was changed or truncated")
    expected_seq = manifest["from_seq"]
    first = manifest.get("first") or {}
    prev_hash = first.get("prev_hash", GENESIS_HASH)
    if expected_seq == 1 and prev_hash != GENESIS_HASH:
        raise Failed("an export from seq 1 must start at the genesis hash")
    count, last = 0, None
    for row in rows(export, manifest["format"]):
        seq = row["seq"]
        if seq != expected_seq:
            raise Failed(f"seq {expected_seq}: missing or out of order (found {seq})")
        if row["prev_hash"] != prev_hash:
            raise Failed(f"seq {seq}: does not link to the entry before it")
        if entry_hash(row["prev_hash"], row) != row["hash"]:
            raise Failed(f"seq {seq}: content does not match its hash (modified)")
        prev_hash, expected_seq, count, last = row["hash"], seq + 1, count + 1, row
    if count != manifest["count"]:
        raise Failed(f"the file has {count} entries; the manifest says {manifest['count']}")
    if count and (last["seq"], last["hash"]) != (manifest["last"]["seq"], manifest["last"]["hash"]):
        raise Failed("the last entry differs from the manifest's")
    if count and (manifest["first"]["seq"], manifest["first"]["hash"]) != (manifest["from_seq"], first.get("hash")):
        raise Failed("the manifest's first entry is inconsistent")

    cp = manifest.get("checkpoint")
    if cp is None:
        if count:
            raise Failed("the manifest has no checkpoint to vouch for the entries")
        return "empty export, nothing to vouch for"
    if count and (cp["seq"], cp["hash"]) != (last["seq"], last["hash"]):
        raise Failed(f"the last entry (seq {last['seq']}) is not the signed checkpoint (seq {cp['seq']})")
    if public_key_hex and public_key_hex.lower() != cp["public_key"].lower():
        raise Failed("the checkpoint was signed by a different key than the one you pinned")
    message = f"cdp-audit-checkpoint:v1:{cp['seq']}:{cp['hash']}:{cp['signed_at']}".encode()
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp["public_key"])).verify(
            bytes.fromhex(cp["signature"]), message
        )
    except (InvalidSignature, ValueError) as exc:
        raise Failed("the checkpoint's Ed25519 signature does not verify") from exc
    key_id = hashlib.sha256(bytes.fromhex(cp["public_key"])).hexdigest()[:16]
    trust = "pinned key" if public_key_hex else f"key id {key_id} from the manifest (compare it independently)"
    return f"{count} entries, seq {manifest['from_seq']}..{cp['seq']}, signed checkpoint verified with {trust}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="the exported CSV or JSON Lines file")
    parser.add_argument("manifest", type=Path, help="its manifest (JSON)")
    parser.add_argument("--public-key", help="the platform's Ed25519 public key, hex, to pin")
    args = parser.parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
        summary = verify(args.export, manifest, args.public_key)
    except (Failed, OSError, KeyError, TypeError, ValueError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
