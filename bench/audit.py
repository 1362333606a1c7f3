"""Benchmark of the audit trail: the added cost of auditing a profile read, and export speed.

    DATABASE_URL=postgres://... python bench/audit.py --reads 2000 --rows 200000

Runs on whatever DATABASE_URL says (migrating it first). It APPENDS to that database's audit
trail (append-only: nothing can be removed afterwards), so point it at a scratch database.

1. Profile read with vs without `audit_record`, interleaved in the same run: each operation opens
   a transaction, loads a profile and opens its sealed vault; the audited variant also appends a
   `profile.read` entry (chain lock, head lookup, SHA-256, insert). Prints mean microseconds per
   read and the ratio.
2. Export: makes sure at least --rows entries exist (bulk-appending a valid chain), signs a
   checkpoint, then streams CSV and JSON Lines exports into SHA-256 (no disk) and prints rows per
   second against the target of 20,000/s; also the verification rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from cdp.actor import Actor, ActorKind, Role  # noqa: E402
from cdp.models import Profile  # noqa: E402
from privacy.audit import AuditAction, audit_record  # noqa: E402
from privacy.audit.chain import GENESIS_HASH, entry_hash, exported_fields  # noqa: E402
from privacy.audit.checkpoints import checkpoint_create, checkpoint_latest  # noqa: E402
from privacy.audit.export import ExportPlan, ExportStats, export_chunks  # noqa: E402
from privacy.audit.models import AuditEntry  # noqa: E402
from privacy.audit.verify import audit_chain_check  # noqa: E402
from privacy.audit.writer import lock_chain  # noqa: E402
from privacy.crypto import clear_data_key_cache, open_sealed, seal  # noqa: E402

TARGET_ROWS_PER_SECOND = 20_000


def bench_reads(n: int) -> None:
    profiles = []
    for i in range(20):
        profile = Profile.objects.create(first_seen_at=timezone.now(), last_seen_at=timezone.now())
        profile.vault = seal(subject_id=profile.id, field="traits", value={"name": f"Bench {i}", "city": "Shanghai"})
        profile.save(update_fields=["vault"])
        profiles.append(profile.id)
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:bench", role=Role.STEWARD, purpose="support")

    def read(profile_id: uuid.UUID, audited: bool) -> None:
        with transaction.atomic():
            profile = Profile.objects.get(pk=profile_id)
            open_sealed(subject_id=profile.id, field="traits", blob=bytes(profile.vault))
            if audited:
                audit_record(
                    actor=actor, action=AuditAction.PROFILE_READ, subject_id=profile.id, legal_basis="contract"
                )

    timings: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(50):  # warm-up
        read(profiles[0], False)
        read(profiles[0], True)
    for i in range(n):
        for audited in (i % 2 == 0, i % 2 != 0):  # alternate which variant goes first
            start = time.perf_counter()
            read(profiles[i % len(profiles)], audited)
            timings[audited].append(time.perf_counter() - start)
    clear_data_key_cache()
    plain, audited = statistics.mean(timings[False]) * 1e6, statistics.mean(timings[True]) * 1e6
    p50p, p50a = statistics.median(timings[False]) * 1e6, statistics.median(timings[True]) * 1e6
    print(f"profile read without audit: mean {plain:8.1f} us  median {p50p:8.1f} us  ({n} reads)")
    print(f"profile read with audit:    mean {audited:8.1f} us  median {p50a:8.1f} us  ({n} reads)")
    print(f"added cost of auditing:     {audited - plain:8.1f} us per read; ratio {audited / plain:.2f}x")


def ensure_rows(rows: int, batch: int = 5000) -> None:
    have = AuditEntry.objects.count()
    missing = rows - have
    if missing <= 0:
        return
    print(f"appending {missing} entries (bulk, valid chain) ...", flush=True)
    actor_ids = [f"key:{uuid.uuid4().hex[:12]}" for _ in range(50)]
    start = time.perf_counter()
    while missing > 0:
        size = min(batch, missing)
        with transaction.atomic():
            lock_chain()
            head = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
            seq, prev = head if head else (0, GENESIS_HASH)
            entries = []
            now = timezone.now()
            for i in range(size):
                seq += 1
                entry = AuditEntry(
                    seq=seq,
                    occurred_at=now,
                    actor_kind="api_key",
                    actor_id=actor_ids[i % 50],
                    role="steward",
                    action="profile.read",
                    outcome="ok",
                    subject_id=uuid.uuid4(),
                    purpose="support",
                    legal_basis="contract",
                    object_type="profile",
                    object_id=str(seq),
                    request_id=uuid.uuid4().hex,
                    client_hash="a" * 64,
                    details={"fields": 3, "ok": True},
                    prev_hash=prev,
                )
                entry.hash = prev = entry_hash(prev, exported_fields(entry))
                entries.append(entry)
            AuditEntry.objects.bulk_create(entries, batch_size=1000)
        missing -= size
    print(f"  appended in {time.perf_counter() - start:.1f} s")


def bench_export(rows: int, chunk_size: int) -> None:
    ensure_rows(rows)
    checkpoint_create(actor=Actor.system("bench"))
    checkpoint = checkpoint_latest()
    for fmt in ("csv", "jsonl"):
        plan = ExportPlan(format=fmt, from_seq=1, to_seq=checkpoint.seq, checkpoint=checkpoint)
        stats = ExportStats()
        size = 0
        start = time.perf_counter()
        with transaction.atomic():  # server-side cursor on PostgreSQL
            for chunk in export_chunks(plan, stats, chunk_size=chunk_size):
                size += len(chunk)
        elapsed = time.perf_counter() - start
        rate = stats.count / elapsed
        verdict = "meets" if rate >= TARGET_ROWS_PER_SECOND else "BELOW"
        print(
            f"export {fmt:5}: {stats.count} rows, {size / 1e6:.1f} MB in {elapsed:.2f} s = {rate:,.0f} rows/s "
            f"({verdict} the {TARGET_ROWS_PER_SECOND:,}/s target; ratio {rate / TARGET_ROWS_PER_SECOND:.2f})"
        )
    start = time.perf_counter()
    with transaction.atomic():
        result = audit_chain_check(chunk_size=chunk_size)
    elapsed = time.perf_counter() - start
    print(
        f"verify      : {result.checked} rows in {elapsed:.2f} s = {result.checked / elapsed:,.0f} rows/s "
        f"(valid={result.valid})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="profile reads per variant")
    parser.add_argument("--rows", type=int, default=200_000, help="audit entries to export (appended if fewer)")
    parser.add_argument("--chunk-size", type=int, default=5000, help="rows per database round trip")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    bench_reads(args.reads)
    bench_export(args.rows, args.chunk_size)


if __name__ == "__main__":
    main()
