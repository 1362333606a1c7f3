"""Benchmark: access packages and erasure per person, through the real services.

Ingests P people (default 200) with E track events each (default 50) through
`cdp.services.ingest.ingest_batch`, then times, for K of them (default 20):
  - building the sealed access package (`dsar_package_build`) and downloading it once;
  - full erasure (`subject_erase`: suppression, deletes, provider hooks, shredding, receipt);
and prints the per-person median and p95 in milliseconds and events erased per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_dsar python bench/dsar.py --people 200 --events 50 --sample 20

Every run uses fresh identifiers (a random e-mail domain). Erased people stay as erased profile
shells with their suppression entries and audit entries (the audit trail is append-only); the
other bench people are erased at the end too, unless --keep, so no personal data is left behind.
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

from cdp.actor import Actor, ActorKind, Role  # noqa: E402
from cdp.demo import seed_traits  # noqa: E402
from cdp.models import Channel, Source  # noqa: E402
from cdp.services.ingest import ingest_batch  # noqa: E402
from consent.services import consent_seed_purposes  # noqa: E402
from privacy.dsar.erasure import subject_erase  # noqa: E402
from privacy.dsar.models import DataSubjectRequest  # noqa: E402
from privacy.dsar.package import dsar_package_build, dsar_package_download  # noqa: E402
from privacy.dsar.services import dsar_create, dsar_resolve_subject  # noqa: E402

OFFICER = Actor(kind=ActorKind.API_KEY, actor_id="key:bench", role=Role.COMPLIANCE, purpose="data_subject_rights")


def load(people: int, events: int, domain: str) -> list[str]:
    source, _ = Source.objects.get_or_create(name="bench-dsar", defaults={"channel": Channel.WEB})
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:bench-src", role=Role.SOURCE, source_id=source.pk)
    emails = [f"person{i}@{domain}" for i in range(people)]
    batch: list[dict] = []

    def flush() -> None:
        if batch:
            ingest_batch(actor=actor, messages=list(batch))
            batch.clear()

    def add(message: dict) -> None:
        if len(batch) >= 1000:
            flush()
        batch.append(message)

    for i, email in enumerate(emails):
        add(
            {
                "message_id": f"{domain}-{i}-id",
                "type": "identify",
                "timestamp": "2026-01-01T10:00:00Z",
                "identifiers": {"email": email},
                "traits": {"name": f"Bench Person {i}", "city": "Berlin"},
            }
        )
        for j in range(events):
            add(
                {
                    "message_id": f"{domain}-{i}-{j}",
                    "type": "track",
                    "event": "purchase",
                    "timestamp": f"2026-01-{1 + j % 28:02d}T12:00:00Z",
                    "identifiers": {"email": email},
                    "properties": {"amount": float(j % 100)},
                }
            )
    flush()
    return emails


def work(subject_id, request_type: str) -> DataSubjectRequest:
    request = dsar_create(
        actor=OFFICER, subject_id=subject_id, request_type=request_type, jurisdiction="gdpr", channel="staff"
    )
    DataSubjectRequest.objects.filter(pk=request.pk).update(status="in_progress", verification_method="staff_check")
    return request


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--events", type=int, default=50, help="track events per person")
    parser.add_argument("--sample", type=int, default=20, help="people timed for package and erasure")
    parser.add_argument("--keep", action="store_true", help="leave the other bench people in place")
    args = parser.parse_args()
    seed_traits()
    consent_seed_purposes()
    domain = f"bench-{uuid.uuid4().hex[:8]}.invalid"
    started = time.perf_counter()
    emails = load(args.people, args.events, domain)
    load_s = time.perf_counter() - started
    subjects = [dsar_resolve_subject(id_type="email", value=e).pk for e in emails]
    package_ms, erase_ms, sizes = [], [], []
    for subject in subjects[: args.sample]:
        request = work(subject, "access")
        t0 = time.perf_counter()
        package = dsar_package_build(actor=OFFICER, request_id=request.pk)
        DataSubjectRequest.objects.filter(pk=request.pk).update(status="completed")
        dsar_package_download(actor=OFFICER, request_id=request.pk)
        package_ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(package.size)
        request = work(subject, "erasure")
        t0 = time.perf_counter()
        subject_erase(actor=OFFICER, request_id=request.pk)
        erase_ms.append((time.perf_counter() - t0) * 1000)
        DataSubjectRequest.objects.filter(pk=request.pk).update(status="completed")
    if not args.keep:
        for subject in subjects[args.sample :]:
            request = work(subject, "erasure")
            subject_erase(actor=OFFICER, request_id=request.pk)
            DataSubjectRequest.objects.filter(pk=request.pk).update(status="completed")
    per_person_events = args.events + 1
    print(f"people={args.people} events/person={per_person_events} sample={args.sample}")
    print(f"load: {args.people * per_person_events / load_s:,.0f} msg/s through ingest_batch")
    print(
        f"access package build+download: median {statistics.median(package_ms):.1f} ms, "
        f"p95 {pct(package_ms, 0.95):.1f} ms, median size {statistics.median(sizes) / 1024:.1f} KiB"
    )
    print(
        f"erasure: median {statistics.median(erase_ms):.1f} ms, p95 {pct(erase_ms, 0.95):.1f} ms, "
        f"{per_person_events / (statistics.median(erase_ms) / 1000):,.0f} events erased/s"
    )


if __name__ == "__main__":
    main()
