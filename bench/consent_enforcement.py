"""Benchmark the consent enforcement filter: how long `profiles_consented_for` takes on N
profiles, compared with the same count without the consent filter, and that a withdrawal shows
in the very next call. Everything runs in one transaction that is rolled back: nothing is left.

    python bench/consent_enforcement.py --profiles 20000 --repeat 5
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp python bench/consent_enforcement.py
"""

from __future__ import annotations

import argparse
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

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from cdp.actor import Actor  # noqa: E402
from cdp.models import Profile  # noqa: E402
from consent.enforcement import profiles_consented_for, require_processing_allowed  # noqa: E402
from consent.services import consent_import_grants, consent_seed_purposes, consent_withdraw  # noqa: E402


class Rollback(Exception):
    pass


def timed(fn, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=20_000, help="profiles to create (default 20000)")
    parser.add_argument("--share", type=float, default=0.4, help="share who grant marketing_sms (default 0.4)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions, median reported (default 5)")
    args = parser.parse_args()
    actor = Actor.system("bench")
    try:
        with transaction.atomic():
            consent_seed_purposes()
            now = timezone.now()
            ids = [uuid.uuid4() for _ in range(args.profiles)]
            start = time.perf_counter()
            Profile.objects.bulk_create([Profile(id=i, first_seen_at=now) for i in ids], batch_size=2000)
            granted = ids[: int(len(ids) * args.share)]
            consent_import_grants(actor=actor, grants=[(i, "marketing_sms") for i in granted], method="api")
            setup = time.perf_counter() - start
            base = Profile.objects.filter(pk__in=Profile.objects.values("pk"))
            plain, total = timed(lambda: Profile.objects.count(), args.repeat)
            filtered, count = timed(
                lambda: profiles_consented_for(Profile.objects.all(), purpose="marketing_sms", channel="sms").count(),
                args.repeat,
            )
            single, _ = timed(
                lambda: require_processing_allowed(subject_id=granted[0], purpose="marketing_sms", channel="sms"),
                args.repeat * 20,
            )
            consent_withdraw(actor=actor.with_purpose("bench"), subject_id=granted[0], purpose="marketing_sms",
                             method="api")  # fmt: skip
            after = profiles_consented_for(base, purpose="marketing_sms", channel="sms").count()
            print(f"database           {connection.vendor}")
            print(f"profiles           {total}  granted {count}  (setup {setup:.2f} s)")
            print(f"plain count        {plain * 1000:8.2f} ms")
            print(f"consented count    {filtered * 1000:8.2f} ms  ratio {filtered / plain:6.1f}x the plain count")
            print(f"per profile        {filtered / max(total, 1) * 1e6:8.3f} us")
            print(f"single subject     {single * 1000:8.3f} ms (require_processing_allowed)")
            print(f"after 1 withdrawal {after} (expected {count - 1})")
            assert after == count - 1
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main()
