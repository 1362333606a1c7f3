"""The demo consent step is idempotent: a second seed_demo grants nothing new."""

from __future__ import annotations

import pytest

from cdp.demo import DEMO_STEPS
from consent.models import ConsentRecord

pytestmark = pytest.mark.django_db
STEPS = {"sources", "trait registry", "customers", "consent purposes", "demo consents"}


def test_seed_demo_twice_grants_nothing_new():
    # 200 customers with the default seed: some draw no grant at all the first time, which is the
    # case a naive "grant to whoever has none" re-run gets wrong.
    def run() -> int:
        for label, step in DEMO_STEPS:
            if label in STEPS:
                step(customers=200, seed=20261123, progress=False)
        return ConsentRecord.objects.count()

    first = run()
    assert first > 0
    assert run() == first
