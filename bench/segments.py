"""Benchmark: materialise a three-condition segment over N synthetic profiles, beside the bare SQL.

Loads N profiles (default 1,000,000) with PostgreSQL COPY, then times, in the same run:
  - the bare SQL of the same predicate, written by hand, two ways: predicate only, materialised
    into a temporary table (CREATE TEMP TABLE ... AS SELECT id FROM cdp_profile WHERE <3
    conditions>), and DELETE + INSERT ... SELECT into the membership table itself (same indexes);
  - segment_materialise (rule tree -> ORM-compiled SQL -> DELETE + INSERT ... SELECT into the
    membership table, with version and time), cold (empty) and as a refresh (replacing rows);
and reports the ratios against both (target: under 10 s and within 2x of the bare SQL).

The segment: city = Shanghai AND journey stage in (purchase, loyalty) AND spend >= 500
(about 4 in 100 profiles). The rows are tagged with the registry trait "bench_city" and deleted
at the end (unless --keep).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_segments python bench/segments.py --profiles 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from cdp.actor import Actor  # noqa: E402
from cdp.models import JourneyStage, Segment, SegmentMembership, TraitDefinition  # noqa: E402
from cdp.services.segments import segment_materialise  # noqa: E402

CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Chengdu"]
DEFINITION = {
    "all": [
        {"type": "trait", "key": "bench_city", "op": "eq", "value": "Shanghai"},
        {"type": "journey_stage", "op": "in", "value": ["purchase", "loyalty"]},
        {"type": "trait", "key": "bench_spend", "op": "gte", "value": 500},
    ]
}
BARE = (
    "CREATE TEMP TABLE bench_bare AS SELECT id FROM cdp_profile WHERE status = 'active' "
    "AND attributes ->> 'bench_city' = 'Shanghai' AND journey_stage IN ('purchase', 'loyalty') "
    "AND (attributes ->> 'bench_spend')::numeric >= 500"
)


def load(profiles: int, seed: int) -> None:
    TraitDefinition.objects.update_or_create(
        kind="trait",
        key="bench_city",
        defaults={"data_type": "enum", "personal": False, "filterable": True, "enum_values": CITIES},
    )
    TraitDefinition.objects.update_or_create(
        kind="trait",
        key="bench_spend",
        defaults={
            "data_type": "integer",
            "personal": False,
            "filterable": True,
            "lower_bound": 0,
            "upper_bound": 1000,
        },
    )
    rng = np.random.default_rng(seed)
    cities = rng.integers(0, len(CITIES), profiles)
    spend = rng.integers(0, 1000, profiles)
    stages = list(JourneyStage.values)
    stage_idx = rng.integers(0, len(stages), profiles)
    now = dt.datetime.now(dt.UTC).isoformat()
    raw = connection.connection  # psycopg 3
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY cdp_profile (id, status, attributes, trait_observed_at, journey_stage, created_at, updated_at) "
            "FROM STDIN"
        ) as copy,
    ):
        for i in range(profiles):
            attrs = json.dumps({"bench_city": CITIES[cities[i]], "bench_spend": int(spend[i])})
            copy.write_row((uuid.uuid4(), "active", attrs, "{}", stages[stage_idx[i]], now, now))
    raw.commit()
    with connection.cursor() as cur:
        cur.execute("ANALYZE cdp_profile")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare() -> int:
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_bare")
        cur.execute(BARE)
        cur.execute("SELECT COUNT(*) FROM bench_bare")
        return cur.fetchone()[0]


def bare_insert(segment_id: int) -> int:
    """The same predicate, hand-written, into the membership table itself (same indexes)."""
    with connection.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("DELETE FROM cdp_segmentmembership WHERE segment_id = %s", [segment_id])
        cur.execute(
            "INSERT INTO cdp_segmentmembership (segment_id, definition_version, computed_at, profile_id) "
            "SELECT %s, 1, now(), id FROM cdp_profile WHERE status = 'active' "
            "AND attributes ->> 'bench_city' = 'Shanghai' AND journey_stage IN ('purchase', 'loyalty') "
            "AND (attributes ->> 'bench_spend')::numeric >= 500",
            [segment_id],
        )
        count = cur.rowcount
        cur.execute("COMMIT")
        return count


def cleanup() -> None:
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_bare")
    Segment.objects.filter(name="bench-segment").delete()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM cdp_profile WHERE attributes ? 'bench_city'")
    TraitDefinition.objects.filter(key__in=["bench_city", "bench_spend"]).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1_000_000, help="synthetic profiles (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (median reported)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic rows")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/segments.py needs PostgreSQL (set DATABASE_URL)")
    call_command("migrate", verbosity=0)
    cleanup()
    t0 = time.perf_counter()
    load(args.profiles, args.seed)
    print(f"loaded {args.profiles:,} profiles in {time.perf_counter() - t0:.1f}s (COPY)")
    segment = Segment.objects.create(name="bench-segment", definition=DEFINITION, owner="bench")
    actor = Actor.system("bench")
    try:
        bare_times, insert_times, cold_times, refresh_times = [], [], [], []
        expected = bare()
        for _ in range(args.repeat):
            bare_times.append(timed(bare))
            insert_times.append(timed(lambda: bare_insert(segment.id)))
            SegmentMembership.objects.filter(segment=segment).delete()
            cold_times.append(timed(lambda: segment_materialise(segment_id=segment.id, actor=actor)))
            refresh_times.append(timed(lambda: segment_materialise(segment_id=segment.id, actor=actor)))
        members = SegmentMembership.objects.filter(segment=segment).count()
        assert members == expected, (members, expected)
        b, i, c, r = (statistics.median(x) for x in (bare_times, insert_times, cold_times, refresh_times))
        print(f"segment: 3 conditions, {members:,} members of {args.profiles:,} profiles")
        print(f"bare SQL, predicate only (CREATE TEMP TABLE AS SELECT):        {b:6.2f} s")
        print(f"bare SQL, DELETE + INSERT ... SELECT into the membership table: {i:6.2f} s")
        for label, t in (("cold (empty segment)", c), ("refresh (replace rows)", r)):
            print(f"materialise, {label:24s} {t:6.2f} s  {t / b:4.2f}x predicate-only  {t / i:4.2f}x bare insert")
        print(f"target < 10 s: {'met' if max(c, r) < 10 else 'NOT met'}")
        print(f"within 2x of the bare insert: {'met' if max(c, r) <= 2 * i else 'NOT met'}")
        print(f"within 2x of the predicate-only SELECT: {'met' if max(c, r) <= 2 * b else 'NOT met'}")
    finally:
        if not args.keep:
            cleanup()


if __name__ == "__main__":
    main()
