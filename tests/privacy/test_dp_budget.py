"""The budget ledger: exhaustion, the global cap, the free cached repeat, and races."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings

from privacy.audit.models import AuditEntry
from privacy.dp.budget import BudgetExhausted, period_bounds
from privacy.dp.engine import dp_budget_status, dp_query_release
from privacy.dp.models import BudgetAccount, BudgetCharge, DpRelease
from tests.factories import EventFactory, ProfileFactory, dp_registry

# The analytics purpose as EU legitimate interests: every active, unrestricted profile counts.
pytestmark = pytest.mark.usefixtures("analytics_legitimate_interests")


@pytest.fixture
def data(db):
    dp_registry()
    for i in range(5):
        EventFactory(profile=ProfileFactory(), name="page_view", properties={"amount": i})


def spec(i: int = 1, eps: float = 0.5) -> dict:
    """Distinct specs (different k) so that the cache does not answer them."""
    return {"metric": "count", "epsilon": eps, "event": "page_view", "max_rows_per_person": i}


def spent(scope: str, analyst_id: str = "") -> Decimal:
    return BudgetAccount.objects.get(scope=scope, analyst_id=analyst_id).epsilon_spent


@override_settings(CDP_DP_ANALYST_EPSILON=1.0, CDP_DP_DATASET_EPSILON=100.0)
def test_exhausted_budget_is_refused_and_charges_nothing(data, make_actor):
    actor = make_actor("analyst", actor_id="key:a")
    dp_query_release(actor=actor, spec=spec(1))
    second = dp_query_release(actor=actor, spec=spec(2))
    assert second.budget["analyst"]["remaining"] == 0
    with pytest.raises(BudgetExhausted) as err:
        dp_query_release(actor=actor, spec=spec(3))
    assert err.value.scope == "analyst"
    assert spent("analyst", "key:a") == Decimal("1.0") and spent("dataset") == Decimal("1.0")
    assert DpRelease.objects.count() == 2 and BudgetCharge.objects.count() == 4
    refusal = AuditEntry.objects.filter(action="dp.refused").latest("seq")
    assert refusal.details["code"] == "budget_exhausted" and refusal.outcome == "denied"


@override_settings(CDP_DP_ANALYST_EPSILON=1.0, CDP_DP_DATASET_EPSILON=1.0)
def test_global_cap_binds_across_two_analysts(data, make_actor):
    alice, bob = make_actor("analyst", actor_id="key:alice"), make_actor("marketing", actor_id="key:bob")
    dp_query_release(actor=alice, spec=spec(1, eps=0.6))
    dp_query_release(actor=bob, spec=spec(1, eps=0.4))  # bob's own cache key: not alice's release
    with pytest.raises(BudgetExhausted) as err:
        dp_query_release(actor=bob, spec=spec(2, eps=0.1))
    assert err.value.scope == "dataset"
    assert spent("analyst", "key:bob") == Decimal("0.4") and spent("dataset") == Decimal("1.0")


@override_settings(CDP_DP_ANALYST_EPSILON=1.0)
def test_identical_spec_is_served_from_cache_at_no_cost(data, make_actor):
    actor = make_actor("analyst", actor_id="key:c")
    first = dp_query_release(actor=actor, spec=spec(1))
    # Same query, differently spelt (defaults explicit, keys reordered): the normalised hash matches.
    again = dp_query_release(
        actor=actor,
        spec={"max_rows_per_person": 1, "event": "page_view", "epsilon": 0.5, "metric": "count", "group_by": []},
    )
    assert again.cached and again.epsilon_charged == 0 and again.release_id == first.release_id
    assert again.result == first.result
    assert spent("analyst", "key:c") == Decimal("0.5")
    assert AuditEntry.objects.filter(action="dp.release", details__cached=True).count() == 1


def test_budget_status_reports_limits(data, make_actor):
    status = dp_budget_status(actor=make_actor("analyst", actor_id="key:s"))
    assert status["analyst"]["remaining"] == status["analyst"]["limit"] > 0
    assert status["global"]["limit"] > 0


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        ("month", dt.datetime(2026, 12, 31, 23, tzinfo=dt.UTC), (dt.date(2026, 12, 1), dt.date(2027, 1, 1))),
        ("quarter", dt.datetime(2026, 11, 5, tzinfo=dt.UTC), (dt.date(2026, 10, 1), dt.date(2027, 1, 1))),
        ("week", dt.datetime(2026, 11, 25, tzinfo=dt.UTC), (dt.date(2026, 11, 23), dt.date(2026, 11, 30))),
        ("day", dt.datetime(2026, 11, 25, tzinfo=dt.UTC), (dt.date(2026, 11, 25), dt.date(2026, 11, 26))),
        ("year", dt.datetime(2026, 11, 25, tzinfo=dt.UTC), (dt.date(2026, 1, 1), dt.date(2027, 1, 1))),
    ],
)
def test_period_bounds(period, now, expected):
    assert period_bounds(now, period) == expected


@override_settings(CDP_DP_ANALYST_EPSILON=1.0, CDP_DP_DATASET_EPSILON=100.0)
def test_a_new_period_has_a_fresh_budget(data, make_actor):
    actor = make_actor("analyst", actor_id="key:p")
    dp_query_release(actor=actor, spec=spec(1, eps=1.0), now=dt.datetime(2026, 10, 15, tzinfo=dt.UTC))
    with pytest.raises(BudgetExhausted):
        dp_query_release(actor=actor, spec=spec(2, eps=0.1), now=dt.datetime(2026, 10, 16, tzinfo=dt.UTC))
    dp_query_release(actor=actor, spec=spec(2, eps=0.1), now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(CDP_DP_ANALYST_EPSILON=1.0, CDP_DP_DATASET_EPSILON=100.0)
def test_fifty_concurrent_requests_release_at_most_ten(make_actor):
    dp_registry()
    for _ in range(5):
        EventFactory(profile=ProfileFactory(), name="page_view")
    actor = make_actor("analyst", actor_id="key:race")
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            dp_query_release(actor=actor, spec=spec(i + 1, eps=0.1))
            outcomes.append("ok")
        except BudgetExhausted:
            outcomes.append("refused")
        except Exception as exc:  # surfaced by the assertion below
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(outcomes)) == ["ok", "refused"], outcomes
    assert outcomes.count("ok") == 10
    assert DpRelease.objects.count() == 10
    assert spent("analyst", "key:race") == Decimal("1.0") == spent("dataset") / 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(CDP_DP_ANALYST_EPSILON=1.0, CDP_DP_DATASET_EPSILON=100.0)
def test_concurrent_identical_specs_are_charged_once(make_actor):
    dp_registry()
    EventFactory(profile=ProfileFactory(), name="page_view")
    actor = make_actor("analyst", actor_id="key:same")
    results: list = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(dp_query_release(actor=actor, spec=spec(1, eps=0.3)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 10
    assert len({r.release_id for r in results}) == 1
    assert all(r.result == results[0].result for r in results)  # everyone sees the same noise
    assert sum(r.epsilon_charged for r in results) == pytest.approx(0.3)
    assert spent("analyst", "key:same") == Decimal("0.3")
