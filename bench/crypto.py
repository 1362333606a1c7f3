"""Benchmark of privacy.crypto: seal/open throughput beside plain JSON, and the KEK re-wrap rate.

Run by hand from the repository root:

    python bench/crypto.py                     # scratch SQLite database and scratch keys
    DATABASE_URL=postgres://... python bench/crypto.py --rotate-keys 20000

It never touches real data or keys: keys are generated into a temporary directory, and the
database is a throw-away test database (a temporary SQLite file, or bench_<name> created next to
the DATABASE_URL database and dropped at the end).

Figures: microseconds per operation and operations per second for seal and open of single
fields and of a 10-trait profile, each beside json.dumps / json.loads of the same value in the
same run, and the ratio. Data keys are cached (as within one request), so this measures the
AES-GCM and framing cost. Target: opening a 10-trait profile costs under 5x its JSON decode.
The re-wrap rate is data keys per second through `kek_rotate` (unwrap + wrap + batched UPDATE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

FIELDS = {
    "name (zh)": "欧阳子涵",
    "name (latin)": "Annabel Cordason",
    "email": "zhang.wei.1984@mail.example.cn",
    "phone": "+8613800138000",
    "address (zh)": "上海市浦东新区世纪大道100号环球金融中心2301室",
    "birth_date": "1984-05-01",
    "loyalty_points": 12873,
}
PROFILE = {
    "name": "欧阳子涵",
    "name_latin": "Ouyang Zihan",
    "email": "ouyang.zihan@mail.example.cn",
    "phone": "+8613800138000",
    "address": "上海市浦东新区世纪大道100号环球金融中心2301室",
    "birth_date": "1990-11-23",
    "gender": "female",
    "wechat_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "loyalty_points": 12873,
    "preferences": {"newsletter": True, "language": "zh-hans", "sizes": ["M", "38"]},
}


def setup_django(tmp: Path) -> Callable[[], None]:
    """Configure Django on scratch keys and a throw-away database; returns the teardown."""
    os.environ["CDP_VAR_DIR"] = str(tmp)  # scratch dev keys (and SQLite files) in a temp dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(tmp / "bench.sqlite3")
    else:
        connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return lambda: connection.creation.destroy_test_db(old_name, verbosity=0)


def per_op(fn: Callable[[], object], ops: int, repeats: int = 5) -> float:
    """Best-of-`repeats` seconds per call of `fn` over `ops` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(ops):
            fn()
        best = min(best, (time.perf_counter() - start) / ops)
    return best


def cycle(items: list) -> Callable[[], object]:
    it = iter(())

    def next_item():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(items)
            return next(it)

    return next_item


def bench_values(label: str, value: object, subjects: list[uuid.UUID], ops: int, field: str) -> list[str]:
    from privacy.crypto import open_sealed, seal

    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    blobs = [(s, seal(subject_id=s, field=field, value=value)) for s in subjects]
    next_subject, next_blob = cycle(subjects), cycle(blobs)

    t_dumps = per_op(lambda: json.dumps(value, ensure_ascii=False, separators=(",", ":")), ops)
    t_loads = per_op(lambda: json.loads(plain), ops)
    t_seal = per_op(lambda: seal(subject_id=next_subject(), field=field, value=value), ops)

    def open_one():
        subject, blob = next_blob()
        return open_sealed(subject_id=subject, field=field, blob=blob)

    t_open = per_op(open_one, ops)
    assert open_one() == value
    size = len(blobs[0][1])
    return [
        f"{label:<16} {len(plain.encode()):>5}B->{size:>4}B  "
        f"seal {t_seal * 1e6:6.2f}us ({1 / t_seal:>9,.0f}/s) "
        f"vs dumps {t_dumps * 1e6:5.2f}us = {t_seal / t_dumps:4.1f}x   "
        f"open {t_open * 1e6:6.2f}us ({1 / t_open:>9,.0f}/s) vs loads {t_loads * 1e6:5.2f}us = {t_open / t_loads:4.1f}x"
    ]


def bench_cold_open(subjects: list[uuid.UUID], ops: int) -> str:
    """Opening with an empty cache: one SELECT and one unwrap first (a new request)."""
    from privacy.crypto import clear_data_key_cache, open_sealed, traits_seal

    blobs = [(s, traits_seal(profile_id=s, traits=PROFILE)) for s in subjects]
    next_blob = cycle(blobs)

    def cold():
        clear_data_key_cache()
        subject, blob = next_blob()
        return open_sealed(subject_id=subject, field="traits", blob=blob)

    t = per_op(cold, min(ops, 2000), repeats=1)
    return f"profile, cold key cache (SELECT + unwrap + open): {t * 1e6:.1f}us ({1 / t:,.0f}/s)"


def bench_rotation(n_keys: int, batch_size: int) -> list[str]:
    import dataclasses

    from django.conf import settings

    from cdp.actor import Actor
    from privacy.crypto.datakeys import wrap_aad
    from privacy.crypto.keyring import get_kms
    from privacy.crypto.models import SubjectKey
    from privacy.crypto.services import kek_rotate

    original = settings.KEYS
    kms = get_kms()
    rows = []
    for _ in range(n_keys):
        subject = uuid.uuid4()
        version, wrapped = kms.wrap(os.urandom(32), aad=wrap_aad(subject, 1))
        rows.append(SubjectKey(subject_id=subject, dek_version=1, kek_version=version, wrapped=wrapped))
    SubjectKey.objects.bulk_create(rows, batch_size=1000)
    new_version = max(original.keks) + 1
    settings.KEYS = dataclasses.replace(
        original, keks={**original.keks, new_version: os.urandom(32)}, kek_active=new_version
    )
    start = time.perf_counter()
    result = kek_rotate(actor=Actor.system("bench"), batch_size=batch_size)
    elapsed = time.perf_counter() - start
    settings.KEYS = original
    assert result.rewrapped >= n_keys and result.failed == 0 and result.remaining == 0, result
    return [
        f"rotate_kek: re-wrapped {result.rewrapped:,} data keys in {elapsed:.2f}s "
        f"= {result.rewrapped / elapsed:,.0f} keys/s (batch size {batch_size}, {result.batches} batches)"
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per timing loop (best of 5)")
    parser.add_argument("--subjects", type=int, default=200, help="subjects (data keys) the loops cycle through")
    parser.add_argument("--rotate-keys", type=int, default=5_000, help="data keys to re-wrap in the rotation bench")
    parser.add_argument("--batch-size", type=int, default=500, help="rotate_kek batch size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cdp-bench-") as tmp:
        teardown = setup_django(Path(tmp))
        try:
            from django.conf import settings
            from django.db import connection

            settings.CDP_DATA_KEY_CACHE_SIZE = max(settings.CDP_DATA_KEY_CACHE_SIZE, args.subjects)
            subjects = [uuid.uuid4() for _ in range(args.subjects)]
            print(
                f"privacy.crypto bench on {connection.vendor}: ops={args.ops} subjects={args.subjects} "
                f"rotate_keys={args.rotate_keys} batch_size={args.batch_size} (keys cached unless stated)"
            )
            lines = []
            for label, value in FIELDS.items():
                lines += bench_values(label, value, subjects, args.ops, field=label.split()[0])
            lines += bench_values("10-trait profile", PROFILE, subjects, args.ops, field="traits")
            for line in lines:
                print(line)
            profile_ratio = float(lines[-1].rsplit("=", 1)[1].strip().rstrip("x"))
            verdict = "meets" if profile_ratio < 5 else "MISSES"
            print(f"target: open 10-trait profile < 5x json.loads -> {profile_ratio:.1f}x ({verdict} the target)")
            print(bench_cold_open(subjects, args.ops))
            for line in bench_rotation(args.rotate_keys, args.batch_size):
                print(line)
            print(f"python {sys.version.split()[0]}; each figure is the best of 5 timing loops")
        finally:
            teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
