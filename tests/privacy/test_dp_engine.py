"""The DP engine end to end on the real database: every metric, bounding, domains, no leaks."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from cdp.models import Channel, JourneyStage, ProfileStatus
from privacy.audit.models import AuditEntry
from privacy.dp import bounding
from privacy.dp.engine import dp_compute, dp_query_release
from privacy.dp.models import DpRelease
from privacy.dp.spec import spec_parse
from tests.factories import EventFactory, ProfileFactory, SourceFactory, dp_registry

# The analytics purpose as EU legitimate interests: every active, unrestricted profile counts.
pytestmark = pytest.mark.usefixtures("analytics_legitimate_interests")

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"}


def at(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)


@pytest.fixture
def shop(db):
    """A small, fully known dataset."""
    dp_registry()
    src = SourceFactory(name="shop")
    a = ProfileFactory(attributes={"city": "Shanghai"}, journey_stage=JourneyStage.LOYALTY)
    b = ProfileFactory(attributes={"city": "Beijing"}, journey_stage=JourneyStage.PURCHASE)
    c = ProfileFactory(attributes={"city": "Mars"}, journey_stage=JourneyStage.AWARENESS)  # outside the enum
    gone = ProfileFactory(attributes={"city": "Shanghai"}, status=ProfileStatus.ERASED)
    ev = lambda p, name, day, **kw: EventFactory(profile=p, source=src, name=name, occurred_at=at(day), **kw)  # noqa: E731
    for p in (a, b, c, gone):
        ev(p, "page_view", 1)
    ev(a, "product_view", 2)
    ev(a, "purchase", 3, properties={"amount": 120.5, "product_category": "beauty"})
    ev(a, "purchase", 40, properties={"amount": 99999, "product_category": "apparel"})  # clamped to 5000
    ev(a, "app_open", 41, channel=Channel.APP)
    ev(a, "loyalty_join", 42)
    ev(b, "product_view", 2)
    ev(b, "purchase", 5, properties={"amount": 10})
    ev(a, "survey_response", 10, properties={"score": 10, "csat": 5})
    ev(b, "survey_response", 10, properties={"score": 3, "csat": 2})
    ev(b, "survey_response", 11, properties={"score": 9, "csat": 4})  # b's latest answer counts
    ev(gone, "purchase", 3, properties={"amount": 4000})
    return {"a": a, "b": b, "c": c, "gone": gone}


def exact(spec_dict):
    spec = spec_parse(spec_dict)
    m = spec.metric
    if m == "count":
        return bounding.exact_people(spec)
    if m in {"count_events", "sum", "mean"}:
        return bounding.exact_rows(spec)
    raise AssertionError(m)


def test_population_is_active_profiles_only(shop):
    assert dict(exact({"metric": "count", "epsilon": 1})) == {(): [3.0]}
    assert exact({"metric": "count", "epsilon": 1, "event": "purchase"})[()] == [2.0]


def test_exact_sum_is_clamped_to_declared_bounds(shop):
    got = exact({"metric": "sum", "epsilon": 1, "event": "purchase", "value": "amount"})
    assert got[()] == [3.0, (120.5 + 5000 + 10) * 100]


def test_group_by_releases_every_domain_key_and_no_other(shop):
    spec = {"metric": "count", "epsilon": 1, "group_by": ["trait:city", "journey_stage"]}
    result = dp_compute(spec_parse(spec), random_state=np.random.RandomState(1))
    keys = {(r["group"]["trait:city"], r["group"]["journey_stage"]) for r in result["rows"]}
    expected = {(c, s) for c in ["Shanghai", "Beijing", "Other"] for s in JourneyStage.values}
    assert keys == expected  # "Mars" (outside the declared enum) never appears; empty keys do
    assert len(result["rows"]) == len(expected)


def test_group_by_month_uses_the_window_months(shop):
    spec = {"metric": "count_events", "epsilon": 1, "group_by": ["month", "channel"], "window": WINDOW}
    rows = dp_compute(spec_parse(spec), random_state=np.random.RandomState(2))["rows"]
    assert {r["group"]["month"] for r in rows} == {"2026-01", "2026-02", "2026-03"}
    assert len(rows) == 3 * len(Channel.values)


@pytest.mark.parametrize(
    "spec",
    [
        {"metric": "count", "epsilon": 1, "group_by": ["channel"], "window": WINDOW},
        {"metric": "count_events", "epsilon": 1, "event": "purchase"},
        {
            "metric": "sum",
            "epsilon": 1,
            "event": "purchase",
            "value": "amount",
            "group_by": ["property:product_category"],
        },
        {"metric": "mean", "epsilon": 1, "event": "purchase", "value": "amount"},
        {"metric": "histogram", "epsilon": 1, "event": "purchase", "value": "amount", "bins": 5},
        {"metric": "histogram", "epsilon": 1, "event": "purchase", "value": "product_category"},
        {"metric": "quantile", "epsilon": 1, "event": "purchase", "value": "amount", "q": 0.5},
        {"metric": "funnel", "epsilon": 1},
        {"metric": "funnel", "epsilon": 1, "steps": ["page_view", "purchase"], "group_by": ["trait:city"]},
        {"metric": "nps", "epsilon": 1, "group_by": ["journey_stage"]},
        {"metric": "csat", "epsilon": 1},
        {"metric": "retention", "epsilon": 1, "window": WINDOW, "periods": 2},
    ],
    ids=lambda s: s["metric"],
)
def test_every_metric_releases_noisy_rows_with_bounds(shop, spec):
    result = dp_compute(spec_parse(spec), random_state=np.random.RandomState(3))
    assert result["rows"]
    for row in result["rows"]:
        assert row["values"]
        for measure in row["values"].values():
            assert set(measure) == {"value", "error_95"}
    json.dumps(result)  # storable as is


def test_funnel_and_nps_exact_semantics(shop):
    funnel = bounding.exact_funnel(spec_parse({"metric": "funnel", "epsilon": 1}))
    # a: awareness(1) -> consideration(2) -> purchase(3) -> use(41) -> loyalty(42); b stops at purchase; c at awareness.
    assert funnel[()] == [3.0, 2.0, 2.0, 1.0, 1.0]
    nps = bounding.exact_latest_value(spec_parse({"metric": "nps", "epsilon": 1}), "survey_response")
    people, _, promoters, passives, detractors = nps[()]
    assert (people, promoters, passives, detractors) == (2.0, 2.0, 0.0, 0.0)  # b's latest score is 9


def test_retention_cohorts(shop):
    got = bounding.exact_retention(spec_parse({"metric": "retention", "epsilon": 1, "window": WINDOW}))
    jan = 2026 * 12
    assert got[(jan, 0)] == 2.0  # a and b first bought in January
    assert got[(jan, 1)] == 1.0  # a came back in February
    assert (jan, 2) not in got


def test_release_response_and_audit_hold_no_exact_value(shop, make_actor):
    actor = make_actor("analyst", actor_id="key:leak")
    spec = {"metric": "sum", "epsilon": 0.5, "event": "purchase", "value": "amount"}
    released = dp_query_release(actor=actor, spec=spec)
    exact_sum = 120.5 + 5000 + 10
    stored = DpRelease.objects.get(id=released.release_id)
    entry = AuditEntry.objects.filter(action="dp.release").latest("seq")
    assert entry.details["query_hash"] == released.spec_hash and entry.details["epsilon"] == 0.5
    for blob in (json.dumps(stored.result), json.dumps(entry.details)):
        assert str(exact_sum) not in blob and str(int(exact_sum * 100)) not in blob
    assert released.result["rows"][0]["values"]["sum"]["error_95"] > 0


def test_privacy_leak_warning_is_an_error():
    import warnings

    from diffprivlib.utils import PrivacyLeakWarning

    from privacy.dp.mechanisms import PrivacyLeakError, strict_privacy

    with pytest.raises(PrivacyLeakError), strict_privacy():
        warnings.warn("bounds were not given", PrivacyLeakWarning, stacklevel=1)


def test_no_exact_value_in_logs(shop, make_actor, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    spec = {"metric": "count_events", "epsilon": 0.2, "event": "purchase", "group_by": ["channel"]}
    released = dp_query_release(actor=make_actor("analyst", actor_id="key:logs"), spec=spec)
    assert released.result["rows"]
    assert "exact" not in caplog.text.lower()
    for record in caplog.records:
        assert "purchase" not in record.getMessage() or "dp" not in record.name


def test_exact_histograms(shop):
    labels, got = bounding.exact_histogram(
        spec_parse({"metric": "histogram", "epsilon": 1, "event": "purchase", "value": "amount", "bins": 5})
    )
    assert labels[0] == "[0, 1000)" and labels[-1] == "[4000, 5000]"
    assert got[()] == [2.0, 0.0, 0.0, 0.0, 1.0]  # 99999 is clamped into the last bin
    labels, got = bounding.exact_histogram(
        spec_parse({"metric": "histogram", "epsilon": 1, "event": "purchase", "value": "product_category"})
    )
    assert labels == ["apparel", "beauty"] and got[()] == [1.0, 1.0]


def test_quantile_is_close_on_enough_data(db):
    dp_registry()
    src = SourceFactory(name="q")
    people = [ProfileFactory() for _ in range(400)]
    for i, p in enumerate(people):
        EventFactory(profile=p, source=src, name="purchase", occurred_at=at(1), properties={"amount": i * 10})
    spec = spec_parse({"metric": "quantile", "epsilon": 1, "event": "purchase", "value": "amount", "q": 0.5})
    value = dp_compute(spec, random_state=np.random.RandomState(5))["rows"][0]["values"]["quantile"]["value"]
    assert 1700 <= value <= 2300  # true median 1995; bounds [0, 5000]
