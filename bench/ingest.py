"""Ingestion throughput: the whole pipeline against a bare bulk insert of the same rows.

Usage (PostgreSQL is the target; migrate the database first):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_ingest \\
        python bench/ingest.py --customers 2000 --batch-size 1000

Prints messages per second through ingest_batch (validation, normalisation, blind indexes,
resolution and merges, sealed traits, events, evidence, audit) and through a bare
Event.bulk_create of the same rows in the same batches (time order, split by source, one
transaction each) in the same run, and their ratio: the target.
For context it also prints the same rows through a bare COPY, the statement the pipeline's
own writes use (cdp/bulk.py), and the pipeline's ratio to that. The bare inserts run first.
A database that already holds events is vacuumed and analysed before either runs, as
autovacuum would have; an empty one is not. Without autovacuum, repeated runs on a database
the cleanup emptied slow down (dead rows): measure on a fresh database or on one with data.
Targets: ratio >= 0.3 and >= 1,000 msg/s on 2 cores. Rows it creates are deleted unless --keep.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils.dateparse import parse_datetime  # noqa: E402

from cdp.bulk import copy_insert  # noqa: E402
from cdp.demo import seed_traits  # noqa: E402
from cdp.models import Event, Profile, Source  # noqa: E402
from cdp.synthetic import SOURCES, batches, generate, ingest_records, resolution_quality  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="synthetic people (about 6 messages each)")
    parser.add_argument("--batch-size", type=int, default=1000, help="messages per ingest batch (the API allows 1,000)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="generator seed (fresh ids per run)")
    parser.add_argument("--keep", action="store_true", help="keep the rows the benchmark created")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print(f"warning: running on {connection.vendor}; the target figures are for PostgreSQL")
    seed_traits()
    if connection.vendor == "postgresql" and Event.objects.exists():
        # Production keeps tables vacuumed and analysed through autovacuum (check cdp.W001). On
        # a machine with it off, a database that holds data would carry dead rows and be planned
        # without statistics (sequential scans), so do first what autovacuum would have done.
        # Not on an empty database: statistics saying "empty" mislead the planner (and the
        # foreign-key checks' cached plans) while the run fills the tables.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    data = generate(customers=args.customers, seed=args.seed)
    n = len(data.records)
    print(f"{args.customers} customers, {n} messages, batch size {args.batch_size}, database {connection.vendor}")

    bare_source, _ = Source.objects.get_or_create(name=f"bench-bare-{args.seed}", defaults={"channel": "other"})
    profile = Profile.objects.create()

    def bare_rows(chunk: list[dict], tag: str) -> list[Event]:
        return [
            Event(
                profile=profile,
                source=bare_source,
                message_id=f"{tag}{m['message_id']}",
                type=m["type"],
                name=m.get("event", ""),
                channel=m["channel"],
                occurred_at=parse_datetime(m["timestamp"]),
                properties=m.get("properties", {}),
            )
            for m in chunk
        ]

    def bare_insert(write, tag: str) -> float:
        """The same batches the pipeline gets (time order, split by source), one transaction each."""
        started = time.perf_counter()
        for _source, chunk in batches(data.records, args.batch_size):
            with transaction.atomic():
                write(bare_rows(chunk, tag))
        return time.perf_counter() - started

    bare = bare_insert(lambda rows: Event.objects.bulk_create(rows, batch_size=args.batch_size), "")
    # The same rows again through COPY, the statement the pipeline itself writes with.
    bare_copy = bare_insert(lambda rows: copy_insert(Event, rows), "copy-")

    # The pipeline runs last, so it (not the bare insert) writes into the larger event table.
    started = time.perf_counter()
    counts = ingest_records(data.records, batch_size=args.batch_size)
    pipeline = time.perf_counter() - started
    quality = resolution_quality(data)

    rate, bare_rate = n / pipeline, n / bare
    print(f"results: {dict(counts)}")
    print(
        f"resolution: precision {quality['precision']:.3f}, recall {quality['recall']:.3f}, "
        f"{quality['profiles']} profiles for {quality['persons']} persons"
    )
    print(f"pipeline:    {rate:9.0f} msg/s  ({pipeline:.1f} s)")
    print(f"bare insert: {bare_rate:9.0f} msg/s  ({bare:.1f} s)")
    print(f"ratio:       {rate / bare_rate:9.3f}  (target >= 0.3; absolute target >= 1000 msg/s)")
    copy_rate = n / bare_copy
    print(f"bare COPY:   {copy_rate:9.0f} msg/s  ({bare_copy:.1f} s); pipeline / bare COPY: {rate / copy_rate:.3f}")

    if not args.keep:
        Event.objects.filter(source=bare_source).delete()
        profile.delete()
        bare_source.delete()
        ids = [r.message["message_id"] for r in data.records]
        sources = Source.objects.filter(name__in=set(SOURCES.values()))
        doomed = set()
        for start in range(0, len(ids), 5000):
            doomed.update(
                Event.objects.filter(source__in=sources, message_id__in=ids[start : start + 5000]).values_list(
                    "profile_id", flat=True
                )
            )
        print(f"cleanup: deleting {len(doomed)} benchmark profiles")
        # Merged profiles point at their survivors (PROTECT): unlink the whole tree, then delete.
        tree = set(doomed)
        while True:
            more = set(Profile.objects.filter(merged_into__in=tree).exclude(id__in=tree).values_list("id", flat=True))
            if not more:
                break
            tree |= more
        Profile.objects.filter(id__in=tree).update(merged_into=None)
        Profile.objects.filter(id__in=tree).delete()


if __name__ == "__main__":
    main()
