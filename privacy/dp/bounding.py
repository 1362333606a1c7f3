"""Population and contribution bounding: the exact, bounded aggregates, computed in SQL.

Why here and not in Python: the database does the heavy lifting (one grouped query), and the
bounding is part of the SQL so no unbounded per-person total ever leaves the database.

Deterministic choice of rows (documented in docs/privacy.md): each profile contributes its
k most recent rows by (occurred_at DESC, id DESC), chosen with ROW_NUMBER() OVER (PARTITION BY
profile), which PostgreSQL and SQLite (>= 3.25) both run. Numeric values are clamped in SQL to
the bounds declared in the registry (never bounds read from the data).

Nothing in this module logs or returns values to callers outside privacy.dp: the exact figures
exist only in memory between here and the mechanisms.
"""

# ruff: noqa: S608 -- SQL text is assembled only from fixed fragments, generated column aliases (d0, d1)
# and ORM-compiled SQL; every value (bounds, names, k, property keys) is a query parameter.

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, FloatField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from cdp.models import Event, Profile, ProfileStatus
from cdp.services.rules import rules_compile
from consent.enforcement import profiles_consented_for
from privacy.dp.spec import QuerySpec, month_index


def dp_population_base() -> QuerySet[Profile]:
    """Every profile a DP query may ever see.

    Only here, so that every metric inherits it: active profiles (not merged away, not erased)
    that consent enforcement allows for the analytics purpose (settings.CDP_DP_PURPOSE). That
    excludes people who restricted processing or objected, and, when the purpose's legal basis
    is consent, everyone without a current, non-stale grant. A withdrawal or restriction takes
    effect for the very next query (cached releases were computed before it and stay as released).
    """
    return profiles_consented_for(
        Profile.objects.filter(status=ProfileStatus.ACTIVE), purpose=settings.CDP_DP_PURPOSE
    )


def population(spec: QuerySpec) -> QuerySet[Profile]:
    return dp_population_base().filter(rules_compile(spec.population, path="$.population"))


def events_base(spec: QuerySpec, names: list[str] | tuple[str, ...] | None) -> QuerySet[Event]:
    qs = Event.objects.filter(profile_id__in=population(spec).values("id"))
    if spec.window.start is not None:
        qs = qs.filter(occurred_at__gte=spec.window.start, occurred_at__lt=spec.window.end)
    if names:
        qs = qs.filter(name__in=list(names))
    return qs


def _dims(spec: QuerySpec, *, on_events: bool) -> dict[str, Any]:
    return {f"d{i}": dim.expression(on_events=on_events) for i, dim in enumerate(spec.group_by)}


def _value_expr(key: str):
    return Cast(KeyTextTransform(key, "properties"), FloatField())


def _inner(spec: QuerySpec, names, *, value_key: str = "", extra: dict | None = None) -> tuple[str, list]:
    qs = events_base(spec, names)
    cols: dict[str, Any] = {"pid": F("profile_id"), "ts": F("occurred_at"), "eid": F("id")}
    if value_key:
        qs = qs.filter(Q(properties__has_key=value_key))
        cols["v"] = _value_expr(value_key)
    cols.update(_dims(spec, on_events=True))
    cols.update(extra or {})
    sql, params = qs.values(**cols).query.sql_with_params()
    return sql, list(params)


def _dim_cols(spec: QuerySpec, alias: str = "") -> list[str]:
    prefix = f"{alias}." if alias else ""
    return [f"{prefix}d{i}" for i in range(len(spec.group_by))]


def _ranked(inner_sql: str, k_param: str = "%s") -> str:
    return (
        "SELECT r.* FROM (SELECT b.*, ROW_NUMBER() OVER (PARTITION BY b.pid ORDER BY b.ts DESC, b.eid DESC) AS rn "
        f"FROM ({inner_sql}) b) r WHERE r.rn <= {k_param}"
    )


def _clamp(col: str) -> str:
    return f"(CASE WHEN {col} < %s THEN %s WHEN {col} > %s THEN %s ELSE {col} END)"


def _run(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _keyed(spec: QuerySpec, rows: list[tuple], n_values: int) -> dict[tuple, list[float]]:
    """Sum rows by normalised group key; rows outside the public domain are dropped."""
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * n_values)
    nd = len(spec.group_by)
    for row in rows:
        key = tuple(dim.normalise(row[i]) for i, dim in enumerate(spec.group_by))
        if any(part is None for part in key):
            continue
        acc = out[key]
        for j in range(n_values):
            acc[j] += float(row[nd + j] or 0)
    return out


def _event_combos(spec: QuerySpec) -> int:
    combos = 1
    for d in spec.group_by:
        if d.level == "event":
            combos *= len(d.domain)
    return combos


def people_sensitivity(spec: QuerySpec) -> int:
    """L1 sensitivity of a person count: the number of released groups one person can reach,
    min(k, size of the event-level domain); 1 when all dimensions are person-level."""
    return min(spec.k, _event_combos(spec))


def uses_events(spec: QuerySpec) -> bool:
    return bool(spec.event) or spec.window.start is not None or any(d.level == "event" for d in spec.group_by)


def exact_people(spec: QuerySpec) -> dict[tuple, list[float]]:
    """People per group. A person adds to at most people_sensitivity(spec) groups."""
    if not uses_events(spec):
        dims = _dims(spec, on_events=False)
        qs = population(spec)
        if dims:
            from django.db.models import Count

            rows = list(qs.values(**dims).annotate(n=Count("id")).values_list(*dims.keys(), "n").order_by())
        else:
            rows = [(qs.count(),)]
        return _keyed(spec, rows, 1)
    inner, params = _inner(spec, [spec.event] if spec.event else None)
    dcols = _dim_cols(spec)
    if people_sensitivity(spec) == _event_combos(spec):
        # A person can reach at most every key of the event-level domain (one key when all
        # dimensions are person-level) and k allows that many: counting distinct people per
        # group is already bounded by the sensitivity, so no ranking is needed.
        sql = f"SELECT {', '.join([*dcols, 'COUNT(DISTINCT pid)'])} FROM ({inner}) b"
        if dcols:
            sql += f" GROUP BY {', '.join(dcols)}"
        return _keyed(spec, _run(sql, params), 1)
    group = ", ".join(["pid", *dcols])
    pairs = f"SELECT {group}, MAX(ts) AS ts FROM ({inner}) b GROUP BY {group}"
    order = ", ".join(["p.ts DESC", *[f"p.{c}" for c in dcols]])
    ranked = f"SELECT p.*, ROW_NUMBER() OVER (PARTITION BY p.pid ORDER BY {order}) AS rn FROM ({pairs}) p"
    sel = ", ".join([*dcols, "COUNT(*)"])
    sql = f"SELECT {sel} FROM ({ranked}) r WHERE r.rn <= %s"
    if dcols:
        sql += f" GROUP BY {', '.join(dcols)}"
    return _keyed(spec, _run(sql, [*params, people_sensitivity(spec)]), 1)


def exact_rows(spec: QuerySpec) -> dict[tuple, list[float]]:
    """count_events, sum and mean: [row count, scaled clamped sum] per group, k rows per person."""
    value = spec.value
    inner, params = _inner(spec, [spec.event] if spec.event else None, value_key=value.key if value else "")
    dcols = _dim_cols(spec)
    if value is not None:
        agg = f"COUNT(*), SUM(ROUND({_clamp('v')} * %s))"
        agg_params = [value.lower, value.lower, value.upper, value.upper, value.scale]
    else:
        agg, agg_params = "COUNT(*), 0", []
    sql = f"SELECT {', '.join([*dcols, agg])} FROM ({_ranked(inner)}) r"
    if dcols:
        sql += f" GROUP BY {', '.join(dcols)}"
    # Parameter order follows the SQL text: aggregate params come first in the SELECT list.
    return _keyed(spec, _run(sql, [*agg_params, *params, spec.k]), 2)


def exact_histogram(spec: QuerySpec) -> tuple[list[str], dict[tuple, list[float]]]:
    """Rows per (group, bin), k rows per person; bins are the declared bounds split evenly."""
    dcols = _dim_cols(spec)
    if spec.value_enum:
        key = spec.normalised["value"]
        inner, params = _inner(
            spec, [spec.event] if spec.event else None, extra={"bv": KeyTextTransform(key, "properties")}
        )
        inner_sql = inner
        labels = list(spec.value_enum)
        case_parts = " ".join("WHEN bv = %s THEN %s" for _ in labels)
        case = f"CASE {case_parts} ELSE -1 END"
        case_params: list = []
        for i, label in enumerate(labels):
            case_params += [label, i]
        inner_params = params
    else:
        value = spec.value
        assert value is not None
        inner_sql, inner_params = _inner(spec, [spec.event] if spec.event else None, value_key=value.key)
        width = (value.upper - value.lower) / spec.bins
        edges = [value.lower + width * (i + 1) for i in range(spec.bins - 1)]
        labels = [f"[{value.lower + width * i:g}, {value.lower + width * (i + 1):g})" for i in range(spec.bins)]
        labels[-1] = labels[-1][:-1] + "]"
        case = (
            "CASE "
            + " ".join(f"WHEN {_clamp('v')} < %s THEN {i}" for i in range(len(edges)))
            + f" ELSE {len(edges)} END"
        )
        case_params = []
        for edge in edges:
            case_params += [value.lower, value.lower, value.upper, value.upper, edge]
    sql = f"SELECT {', '.join([*dcols, f'({case}) AS bin', 'COUNT(*)'])} FROM ({_ranked(inner_sql)}) r"
    sql += f" GROUP BY {', '.join([*dcols, 'bin'])}"
    rows = _run(sql, [*case_params, *inner_params, spec.k])
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    nd = len(spec.group_by)
    for row in rows:
        key = tuple(dim.normalise(row[i]) for i, dim in enumerate(spec.group_by))
        b = int(row[nd])
        if any(part is None for part in key) or not 0 <= b < len(labels):
            continue
        out[key][b] += float(row[nd + 1])
    return labels, out


def exact_values(spec: QuerySpec) -> dict[tuple, list[float]]:
    """Clamped values per group (k per person) for the exponential-mechanism quantile."""
    value = spec.value
    assert value is not None
    inner, params = _inner(spec, [spec.event] if spec.event else None, value_key=value.key)
    dcols = _dim_cols(spec)
    sql = f"SELECT {', '.join([*dcols, _clamp('v')])} FROM ({_ranked(inner)}) r"
    rows = _run(sql, [value.lower, value.lower, value.upper, value.upper, *params, spec.k])
    out: dict[tuple, list[float]] = defaultdict(list)
    nd = len(spec.group_by)
    for row in rows:
        key = tuple(dim.normalise(row[i]) for i, dim in enumerate(spec.group_by))
        if all(part is not None for part in key):
            out[key].append(float(row[nd]))
    return out


def exact_funnel(spec: QuerySpec) -> dict[tuple, list[float]]:
    """People reaching each step: first occurrences of the steps in non-decreasing time order.

    A person counts at most once per step (so the vector over S steps has L1 sensitivity S).
    """
    names = sorted({n for _, events in spec.steps for n in events})
    inner, params = _inner(spec, names, extra={"nm": F("name")})
    dcols = _dim_cols(spec)
    firsts, first_params = [], []
    for i, (_, events) in enumerate(spec.steps):
        marks = ", ".join(["%s"] * len(events))
        firsts.append(f"MIN(CASE WHEN nm IN ({marks}) THEN ts END) AS s{i}")
        first_params += list(events)
    group = ", ".join(["pid", *dcols])
    per_person = f"SELECT {group}, {', '.join(firsts)} FROM ({inner}) b GROUP BY {group}"
    sums = []
    for j in range(len(spec.steps)):
        conds = [f"s{i} IS NOT NULL" for i in range(j + 1)] + [f"s{i} >= s{i - 1}" for i in range(1, j + 1)]
        sums.append(f"SUM(CASE WHEN {' AND '.join(conds)} THEN 1 ELSE 0 END)")
    sql = f"SELECT {', '.join([*dcols, *sums])} FROM ({per_person}) f"
    if dcols:
        sql += f" GROUP BY {', '.join(dcols)}"
    return _keyed(spec, _run(sql, [*first_params, *params]), len(spec.steps))


def exact_latest_value(spec: QuerySpec, event: str) -> dict[tuple, list[float]]:
    """Per person, the latest value of spec.value (k = 1), clamped; returns per group
    [people, sum of values, promoters (>= 9), passives (7-8), detractors (<= 6)]."""
    value = spec.value
    assert value is not None
    inner, params = _inner(spec, [event], value_key=value.key)
    dcols = _dim_cols(spec)
    c = _clamp("v")
    bounds = [value.lower, value.lower, value.upper, value.upper]
    agg = (
        f"COUNT(*), SUM({c}), SUM(CASE WHEN {c} >= 9 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {c} >= 7 AND {c} < 9 THEN 1 ELSE 0 END), SUM(CASE WHEN {c} < 7 THEN 1 ELSE 0 END)"
    )
    sql = f"SELECT {', '.join([*dcols, agg])} FROM ({_ranked(inner, '1')}) r"
    if dcols:
        sql += f" GROUP BY {', '.join(dcols)}"
    return _keyed(spec, _run(sql, [*(bounds * 5), *params]), 5)


def exact_retention(spec: QuerySpec) -> dict[tuple[int, int], float]:
    """Cohort sizes (offset 0) and returning buyers (offsets 1..periods) by first-purchase month.

    The cohort is the month of a person's first purchase inside the window. A person adds 1 to
    one cohort size and at most 1 to each of `periods` return cells: L1 sensitivity 1 + periods.
    """
    inner, params = _inner(spec, [spec.normalised.get("event") or "purchase"], extra={"m": month_index()})
    sql = (
        f"WITH p AS ({inner}), f AS (SELECT pid, MIN(m) AS c FROM p GROUP BY pid), "
        "r AS (SELECT DISTINCT p.pid, f.c, p.m - f.c AS off FROM p JOIN f ON p.pid = f.pid "
        "WHERE p.m - f.c BETWEEN 1 AND %s) "
        "SELECT c, 0, COUNT(*) FROM f GROUP BY c UNION ALL SELECT c, off, COUNT(*) FROM r GROUP BY c, off"
    )
    out: dict[tuple[int, int], float] = {}
    for cohort, offset, n in _run(sql, [*params, spec.periods]):
        out[(int(cohort), int(offset))] = float(n)
    return out
