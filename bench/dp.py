"""Benchmark: a DP person-level count grouped by two public dimensions, beside the bare SQL.

Loads N events (default 1,000,000) for P people (default 20,000: 5 journey stages x 4 regions,
so about 1,000 people per group) with PostgreSQL COPY, then times, in the same run:
  - the bare SQL aggregate: COUNT(DISTINCT profile) grouped by the two dimensions;
  - the DP engine's answer (contribution bounding in SQL + geometric noise), via dp_compute;
and reports the ratio (target <= 1.5x) and the median relative error at the given epsilon
over many noise draws of groups of ~1,000 people (target < 0.5%).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_dp python bench/dp.py --events 1000000

The data lives in a window in 2001 under the source "bench-dp" and is deleted at the end
(unless --keep), so it never mixes with other rows' answers.

The DP population passes consent enforcement (settings.CDP_DP_PURPOSE). For the run the bench
configures that purpose as EU legitimate interests, so every loaded person counts without a
ledger record each while the restriction/objection check still runs in the query; the purpose's
own settings are restored at the end.
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
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from cdp.models import Channel, Event, JourneyStage, Profile, Source, TraitDefinition  # noqa: E402
from privacy.dp import bounding  # noqa: E402
from privacy.dp.engine import dp_compute  # noqa: E402
from privacy.dp.mechanisms import geometric_noise  # noqa: E402
from privacy.dp.spec import spec_parse  # noqa: E402

REGIONS = ["north", "south", "east", "west"]
START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
WINDOW = {"start": "2001-01-01T00:00:00+00:00", "end": "2001-07-01T00:00:00+00:00"}
EVENT_NAMES = ["page_view", "product_view", "add_to_cart", "purchase", "app_open"]


def load(events: int, people: int, seed: int) -> tuple[list[uuid.UUID], int]:
    TraitDefinition.objects.update_or_create(
        kind="trait",
        key="bench_region",
        defaults={"data_type": "enum", "personal": False, "filterable": True, "enum_values": REGIONS},
    )
    source, _ = Source.objects.get_or_create(name="bench-dp", defaults={"channel": Channel.OTHER})
    rng = np.random.default_rng(seed)
    stages = list(JourneyStage.values)
    channels = list(Channel.values)
    ids = [uuid.uuid4() for _ in range(people)]
    now = dt.datetime.now(dt.UTC).isoformat()
    raw = connection.connection  # psycopg 3
    with raw.cursor() as cur:
        with cur.copy(
            "COPY cdp_profile (id, status, attributes, journey_stage, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i, pid in enumerate(ids):
                attrs = json.dumps({"bench_region": REGIONS[(i // len(stages)) % len(REGIONS)]})
                copy.write_row((pid, "active", attrs, stages[i % len(stages)], now, now))
        owners = rng.integers(0, people, events)
        minutes = rng.integers(0, 181 * 24 * 60, events)
        chans = rng.integers(0, len(channels), events)
        names = rng.integers(0, len(EVENT_NAMES), events)
        with cur.copy(
            "COPY cdp_event (profile_id, source_id, message_id, type, name, channel, occurred_at, received_at, "
            "properties) FROM STDIN"
        ) as copy:
            for n in range(events):
                occurred = (START + dt.timedelta(minutes=int(minutes[n]))).isoformat()
                copy.write_row(
                    (
                        ids[owners[n]],
                        source.id,
                        f"b{n}",
                        "track",
                        EVENT_NAMES[names[n]],
                        channels[chans[n]],
                        occurred,
                        now,
                        "{}",
                    )
                )
    raw.commit()
    with connection.cursor() as cur:
        cur.execute("ANALYZE cdp_event")
        cur.execute("ANALYZE cdp_profile")
    return ids, source.id


BARE_COLUMNS = {
    "journey_stage": "p.journey_stage",
    "trait:bench_region": "p.attributes ->> 'bench_region'",
    "channel": "e.channel",
}


def bare_sql(dims: list[str]) -> list[tuple]:
    cols = ", ".join(BARE_COLUMNS[d] for d in dims)
    sql = (
        f"SELECT {cols}, COUNT(DISTINCT e.profile_id) "  # noqa: S608 -- cols from the fixed BARE_COLUMNS
        "FROM cdp_event e JOIN cdp_profile p ON p.id = e.profile_id "
        "WHERE p.status = 'active' AND e.occurred_at >= %s AND e.occurred_at < %s GROUP BY 1, 2"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [WINDOW["start"], WINDOW["end"]])
        return cur.fetchall()


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to load (default 1,000,000)")
    parser.add_argument("--people", type=int, default=20_000, help="people (default 20,000: ~1,000 per group)")
    parser.add_argument("--epsilon", type=float, default=1.0, help="epsilon of the release (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each query; the median is reported")
    parser.add_argument("--draws", type=int, default=200, help="noise draws for the error estimate")
    parser.add_argument(
        "--dims",
        default="journey_stage,trait:bench_region",
        help="two of journey_stage, trait:bench_region, channel (channel is event-level: ranked bounding)",
    )
    parser.add_argument("--k", type=int, default=10, help="max_rows_per_person (matters for channel)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the loaded rows")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        parser.error("run on PostgreSQL: set DATABASE_URL=postgres://...")
    dims = args.dims.split(",")
    if len(dims) != 2 or not set(dims) <= set(BARE_COLUMNS):
        parser.error(f"--dims: two of {', '.join(BARE_COLUMNS)}")
    call_command("migrate", verbosity=0)
    from consent.models import LegalBasis, Purpose

    purpose = Purpose.objects.get(code=settings.CDP_DP_PURPOSE)
    saved_basis, saved_jurisdictions = purpose.legal_basis, purpose.jurisdictions
    Purpose.objects.filter(pk=purpose.pk).update(legal_basis=LegalBasis.LEGITIMATE_INTERESTS, jurisdictions=["gdpr"])

    t0 = time.perf_counter()
    ids, source_id = load(args.events, args.people, args.seed)
    print(f"loaded {args.events:,} events for {args.people:,} people in {time.perf_counter() - t0:.1f}s (COPY)")
    try:
        spec = spec_parse(
            {
                "metric": "count",
                "epsilon": args.epsilon,
                "window": WINDOW,
                "group_by": dims,
                "max_rows_per_person": args.k,
            }
        )
        bare_sql(dims), dp_compute(spec)  # warm both
        t_bare = timed(lambda: bare_sql(dims), args.repeat)
        t_dp = timed(lambda: dp_compute(spec), args.repeat)
        print(f"bare SQL COUNT(DISTINCT) grouped by {' x '.join(dims)}: {t_bare * 1000:.0f} ms")
        print(f"DP engine (bounding + aggregate + noise):        {t_dp * 1000:.0f} ms")
        print(f"ratio DP / bare: {t_dp / t_bare:.2f}x (target <= 1.5x)")

        exact = bounding.exact_people(spec)
        sens = bounding.people_sensitivity(spec)
        rs = np.random.RandomState(args.seed)
        rel = []
        for _ in range(args.draws):
            for (value,) in exact.values():
                noisy = max(geometric_noise(int(value), epsilon=args.epsilon, sensitivity=sens, random_state=rs), 0)
                rel.append(abs(noisy - value) / value)
        sizes = sorted(v[0] for v in exact.values())
        print(
            f"groups: {len(exact)}, people per group {sizes[0]:.0f}..{sizes[-1]:.0f}; sensitivity {sens}; "
            f"median relative error at epsilon={args.epsilon}: {statistics.median(rel) * 100:.3f}% (target < 0.5%)"
        )
    finally:
        Purpose.objects.filter(pk=purpose.pk).update(legal_basis=saved_basis, jurisdictions=saved_jurisdictions)
        if not args.keep:
            Event.objects.filter(source_id=source_id).delete()
            Profile.objects.filter(id__in=ids).delete()


if __name__ == "__main__":
    main()
