"""The rule-tree compiler: table-driven semantics, JSON paths of errors, injection attempts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import Profile
from cdp.services.rules import RuleError, rules_compile
from tests.factories import EventFactory, ProfileFactory, dp_registry

NOW = timezone.now()


@pytest.fixture
def people(db):
    dp_registry()
    p1 = ProfileFactory(
        attributes={"city": "Shanghai", "age_band": 30, "favourite_store": "S1"}, journey_stage="purchase"
    )
    p2 = ProfileFactory(attributes={"city": "Beijing", "age_band": 50}, journey_stage="awareness")
    p3 = ProfileFactory(attributes={}, journey_stage="loyalty")
    EventFactory(
        profile=p1,
        name="purchase",
        properties={"amount": 100, "store_id": "S1"},
        occurred_at=NOW - dt.timedelta(days=5),
    )
    EventFactory(profile=p1, name="purchase", properties={"amount": 300}, occurred_at=NOW - dt.timedelta(days=40))
    EventFactory(profile=p2, name="page_view", occurred_at=NOW - dt.timedelta(days=1))
    for _ in range(3):
        EventFactory(
            profile=p3,
            name="purchase",
            channel="app",
            properties={"amount": 1000},
            occurred_at=NOW - dt.timedelta(days=2),
        )
    return {"p1": p1.id, "p2": p2.id, "p3": p3.id}


def _match(tree, people) -> set[str]:
    ids = set(Profile.objects.filter(rules_compile(tree, now=NOW)).values_list("id", flat=True))
    return {name for name, pid in people.items() if pid in ids}


def trait(key, op, value=None):
    node = {"type": "trait", "key": key, "op": op}
    if value is not None:
        node["value"] = value
    return node


CASES = [
    ("empty tree", {}, {"p1", "p2", "p3"}),
    ("enum eq", trait("city", "eq", "Shanghai"), {"p1"}),
    ("enum ne needs the key", trait("city", "ne", "Shanghai"), {"p2"}),
    ("enum in", trait("city", "in", ["Shanghai", "Beijing"]), {"p1", "p2"}),
    ("enum not_in", trait("city", "not_in", ["Shanghai"]), {"p2"}),
    ("exists", trait("city", "exists"), {"p1", "p2"}),
    ("not_exists", trait("city", "not_exists"), {"p3"}),
    ("range gt", trait("age_band", "gt", 40), {"p2"}),
    ("range between", trait("age_band", "between", [20, 40]), {"p1"}),
    ("range lte", trait("age_band", "lte", 30), {"p1"}),
    ("string eq", trait("favourite_store", "eq", "S1"), {"p1"}),
    ("stage in", {"type": "journey_stage", "op": "in", "value": ["purchase", "loyalty"]}, {"p1", "p3"}),
    ("stage ne", {"type": "journey_stage", "op": "ne", "value": "awareness"}, {"p1", "p3"}),
    ("channel eq", {"type": "channel", "op": "eq", "value": "app"}, {"p3"}),
    ("channel ne", {"type": "channel", "op": "ne", "value": "app"}, {"p1", "p2"}),
    ("event within 30 days", {"type": "event", "name": "purchase", "within_days": 30}, {"p1", "p3"}),
    ("event at least 3 times", {"type": "event", "name": "purchase", "min_count": 3}, {"p3"}),
    ("event at most 2 times", {"type": "event", "name": "purchase", "max_count": 2}, {"p1"}),
    (
        "event with property",
        {"type": "event", "name": "purchase", "where": [{"property": "amount", "op": "gte", "value": 200}]},
        {"p1", "p3"},
    ),
    (
        "event with property and window",
        {
            "type": "event",
            "name": "purchase",
            "within_days": 30,
            "where": [{"property": "amount", "op": "gte", "value": 200}],
        },
        {"p3"},
    ),
    ("event in channel", {"type": "event", "name": "purchase", "channel": "web"}, {"p1"}),
    ("all", {"all": [trait("city", "exists"), {"type": "journey_stage", "op": "eq", "value": "purchase"}]}, {"p1"}),
    ("any", {"any": [trait("city", "eq", "Beijing"), {"type": "channel", "op": "eq", "value": "app"}]}, {"p2", "p3"}),
    ("not", {"not": trait("city", "eq", "Shanghai")}, {"p2", "p3"}),
]


@pytest.mark.parametrize(("label", "tree", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_semantics(people, label, tree, expected):
    assert _match(tree, people) == expected


ERRORS = [
    ("unknown trait", trait("nope", "eq", "x"), "$.key"),
    ("personal or unregistered", trait("birth_date", "eq", "x"), "$.key"),
    ("enum value outside domain", trait("city", "eq", "Mars"), "$.value"),
    ("range on enum", trait("city", "gt", 1), "$.op"),
    ("number expected", trait("age_band", "gt", "40"), "$.value"),
    ("unknown operator", trait("city", "like", "S%"), "$.op"),
    ("misspelt option", {"all": [trait("city", "eq", "Shanghai") | {"vlaue": 1}]}, "$.all[0].vlaue"),
    (
        "bad property value",
        {"type": "event", "name": "purchase", "where": [{"property": "amount", "op": "gte", "value": "x"}]},
        "$.where[0].value",
    ),
    (
        "unknown property",
        {"type": "event", "name": "purchase", "where": [{"property": "zz", "op": "eq"}]},
        "$.where[0].property",
    ),
    ("bad type", {"type": "bogus"}, "$.type"),
    ("empty all", {"all": []}, "$.all"),
    ("nested path", {"any": [{"not": {"type": "journey_stage", "op": "eq", "value": "nope"}}]}, "$.any[0].not.value"),
    ("bad min_count", {"type": "event", "name": "purchase", "min_count": 0}, "$.min_count"),
    ("injection in trait name", trait("city') OR 1=1 --", "eq", "x"), "$.key"),
    ("injection via lookup path", trait("city__contains", "eq", "x"), "$.key"),
]


@pytest.mark.parametrize(("label", "tree", "path"), ERRORS, ids=[c[0] for c in ERRORS])
def test_rule_errors_carry_the_json_path(people, label, tree, path):
    with pytest.raises(RuleError) as err:
        rules_compile(tree, now=NOW)
    assert err.value.path == path


INJECTIONS = [
    "'; DROP TABLE cdp_profile; --",
    "S1' OR '1'='1",
    '") OR 1=1 --',
    "$.city",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injected_values_are_parameters_never_sql(people, payload):
    trees = [
        trait("favourite_store", "eq", payload),
        {"type": "event", "name": payload, "where": [{"property": "store_id", "op": "eq", "value": payload}]},
    ]
    for tree in trees:
        qs = Profile.objects.filter(rules_compile(tree, now=NOW))
        sql, params = qs.query.sql_with_params()
        assert payload not in sql
        assert any(payload in str(p) for p in params)
        assert list(qs) == []
    assert Profile.objects.count() == 3
