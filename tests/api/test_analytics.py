"""POST /api/v1/analytics/query and GET /api/v1/analytics/budget."""

from __future__ import annotations

import pytest
from django.test import override_settings

from privacy.audit.models import AuditEntry
from privacy.dp.models import BudgetAccount, DpRelease
from tests.factories import EventFactory, ProfileFactory, dp_registry

# The analytics purpose as EU legitimate interests: every active, unrestricted profile counts.
pytestmark = pytest.mark.usefixtures("analytics_legitimate_interests")

URL = "/api/v1/analytics/query"


@pytest.fixture
def data(db):
    dp_registry()
    for city in ("Shanghai", "Beijing", "Shanghai"):
        p = ProfileFactory(attributes={"city": city}, journey_stage="purchase")
        EventFactory(profile=p, name="purchase", properties={"amount": 100})


def test_query_releases_noisy_rows_with_bounds_and_budget(data, make_client):
    client = make_client("analyst")
    body = {"metric": "count", "epsilon": 0.5, "group_by": ["trait:city"]}
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["cached"] is False and data["epsilon_charged"] == 0.5
    assert {r["group"]["trait:city"] for r in data["result"]["rows"]} == {"Shanghai", "Beijing", "Other"}
    assert all(r["values"]["people"]["error_95"] > 0 for r in data["result"]["rows"])
    assert data["budget"]["analyst"]["spent"] == 0.5 and data["budget"]["global"]["spent"] == 0.5
    again = client.post(URL, body, format="json").json()
    assert again["cached"] is True and again["epsilon_charged"] == 0 and again["result"] == data["result"]
    budget = client.get("/api/v1/analytics/budget").json()
    assert budget["analyst"]["spent"] == 0.5


def test_marketing_may_query_but_steward_may_not(data, make_client):
    body = {"metric": "count", "epsilon": 0.1}
    assert make_client("marketing").post(URL, body, format="json").status_code == 200
    assert make_client("steward").post(URL, body, format="json").status_code == 403
    assert make_client("steward").get("/api/v1/analytics/budget").status_code == 403


BAD_SPECS = [
    ("unknown metric", {"metric": "median", "epsilon": 1}, "$.metric"),
    ("missing epsilon", {"metric": "count"}, "$.epsilon"),
    ("epsilon too large", {"metric": "count", "epsilon": 50}, "$.epsilon"),
    ("misspelt option", {"metric": "count", "epsilon": 1, "gruop_by": ["channel"]}, "$.gruop_by"),
    ("option of another metric", {"metric": "count", "epsilon": 1, "bins": 4}, "$.bins"),
    ("unknown trait dimension", {"metric": "count", "epsilon": 1, "group_by": ["trait:shoe_size"]}, "$.group_by[0]"),
    ("non-enum dimension", {"metric": "count", "epsilon": 1, "group_by": ["trait:age_band"]}, "$.group_by[0]"),
    ("free-text dimension", {"metric": "count", "epsilon": 1, "group_by": ["store_id"]}, "$.group_by[0]"),
    ("missing bounds", {"metric": "sum", "epsilon": 1, "value": "unbounded"}, "$.value"),
    ("missing value", {"metric": "mean", "epsilon": 1}, "$.value"),
    ("unknown property", {"metric": "sum", "epsilon": 1, "value": "price"}, "$.value"),
    (
        "unknown trait in population",
        {"metric": "count", "epsilon": 1, "population": {"type": "trait", "key": "shoe", "op": "eq", "value": "x"}},
        "$.population.key",
    ),
    ("unknown segment", {"metric": "count", "epsilon": 1, "segment_id": 999999}, "$.segment_id"),
    ("segment id not an int", {"metric": "count", "epsilon": 1, "segment_id": "4"}, "$.segment_id"),
    ("segment and population", {"metric": "count", "epsilon": 1, "segment_id": 4, "population": {}}, "$.segment_id"),
    ("month without window", {"metric": "count", "epsilon": 1, "group_by": ["month"]}, "$.window"),
    (
        "bad window",
        {"metric": "count", "epsilon": 1, "window": {"start": "2026-02-01", "end": "2026-01-01"}},
        "$.window.end",
    ),
    ("retention needs a window", {"metric": "retention", "epsilon": 1}, "$.window"),
    ("funnel by channel", {"metric": "funnel", "epsilon": 1, "group_by": ["channel"]}, "$.group_by[0]"),
    ("quantile q", {"metric": "quantile", "epsilon": 1, "value": "amount", "q": 1.5}, "$.q"),
]


@pytest.mark.parametrize(("label", "body", "path"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_are_400_with_path_and_charge_nothing(data, make_client, label, body, path):
    response = make_client("analyst").post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["details"]["path"] == path
    assert not DpRelease.objects.exists()
    assert not BudgetAccount.objects.filter(epsilon_spent__gt=0).exists()
    assert AuditEntry.objects.filter(action="dp.refused", details__code="invalid_spec").exists()


def test_non_object_body_is_400(data, make_client):
    assert make_client("analyst").post(URL, [1, 2], format="json").status_code == 400


@override_settings(CDP_DP_ANALYST_EPSILON=0.5)
def test_exhausted_budget_is_a_clear_403(data, make_client):
    client = make_client("analyst")
    assert client.post(URL, {"metric": "count", "epsilon": 0.5}, format="json").status_code == 200
    response = client.post(URL, {"metric": "count_events", "epsilon": 0.1}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "budget_exhausted" and error["details"]["scope"] == "analyst"
    assert DpRelease.objects.count() == 1


def test_budget_for_unknown_dataset_is_400(db, make_client):
    response = make_client("analyst").get("/api/v1/analytics/budget?dataset=nope")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["path"] == "$.dataset"
