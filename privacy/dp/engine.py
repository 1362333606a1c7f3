"""The DP query engine: validate, bound, aggregate exactly in SQL, add noise, charge, audit.

`dp_query_release` is the one entry point for every aggregate that leaves the analysis API.
Order of work:
1. validate the spec (SpecError -> 400, audited as dp.refused, nothing charged);
2. an identical normalised spec released to this analyst in this period -> the stored release,
   flagged cached, at no cost (so repetition cannot average the noise away);
3. an unlocked pre-check of the budget (cheap refusal before touching the data);
4. the bounded exact aggregate (privacy.dp.bounding) and its noise (privacy.dp.mechanisms);
5. ONE transaction: lock both accounts, re-check the cache and the budget, charge both,
   store the release, write the dp.release audit entry last.
Exact values live only in local variables of step 4: they are never logged, stored or audited.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, Role
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.dp import bounding
from privacy.dp.budget import (
    BudgetExhausted,
    as_epsilon,
    budget_accounts,
    budget_check,
    budget_debit,
    budget_summary,
    period_bounds,
)
from privacy.dp.mechanisms import (
    geometric_half_width,
    geometric_noise,
    quantile_noise,
    simulated_half_width,
)
from privacy.dp.models import BudgetCharge, DpRelease
from privacy.dp.spec import QuerySpec, SpecError, spec_parse

DP_ROLES = (Role.ANALYST, Role.MARKETING)


@dataclass(frozen=True)
class ReleaseResult:
    release_id: int
    cached: bool
    spec_hash: str
    epsilon_charged: float
    budget: dict
    result: dict


def _measure(value: float | int | None, bound: float | None) -> dict[str, Any]:
    if value is not None and isinstance(value, float) and not math.isfinite(value):
        value = None
    if bound is not None and not math.isfinite(bound):
        bound = None
    return {"value": value, "error_95": bound}


def _keys(spec: QuerySpec) -> list[tuple]:
    return list(itertools.product(*[d.domain for d in spec.group_by]))


def _group(spec: QuerySpec, key: tuple) -> dict[str, Any]:
    return {d.name: d.label(v) for d, v in zip(spec.group_by, key, strict=True)}


def _count(value: float, epsilon: float, sensitivity: int, rs) -> int:
    return max(geometric_noise(round(value), epsilon=epsilon, sensitivity=sensitivity, random_state=rs), 0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den >= 1, np.clip(num, 0, None) / np.maximum(den, 1), np.nan)


def _rate(num: float, den: float) -> float | None:
    return None if den < 1 else min(max(num / den, 0.0), 1.0)


def _people(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    exact = bounding.exact_people(spec)
    sens = bounding.people_sensitivity(spec)
    bound = geometric_half_width(spec.epsilon, sens)
    rows = [
        {
            "group": _group(spec, k),
            "values": {"people": _measure(_count(exact.get(k, [0])[0], spec.epsilon, sens, rs), bound)},
        }
        for k in _keys(spec)
    ]
    return rows, {"mechanism": "geometric", "sensitivity": sens}


def _rows_metric(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    exact = bounding.exact_rows(spec)
    k = spec.k
    rows = []
    if spec.metric == "count_events":
        bound = geometric_half_width(spec.epsilon, k)
        for key in _keys(spec):
            noisy = _count(exact.get(key, [0, 0])[0], spec.epsilon, k, rs)
            rows.append({"group": _group(spec, key), "values": {"events": _measure(noisy, bound)}})
        return rows, {"mechanism": "geometric", "sensitivity": k}
    value = spec.value
    assert value is not None
    sum_sens = max(1, math.ceil(k * value.magnitude * value.scale))
    if spec.metric == "sum":
        bound = geometric_half_width(spec.epsilon, sum_sens) / value.scale
        for key in _keys(spec):
            scaled = geometric_noise(
                round(exact.get(key, [0, 0])[1]), epsilon=spec.epsilon, sensitivity=sum_sens, random_state=rs
            )
            rows.append({"group": _group(spec, key), "values": {"sum": _measure(scaled / value.scale, bound)}})
        return rows, {"mechanism": "geometric on integer-scaled sums", "sensitivity": sum_sens / value.scale}
    half = spec.epsilon / 2
    count_bound = geometric_half_width(half, k)
    for key in _keys(spec):
        count, scaled = exact.get(key, [0, 0])
        noisy_count = geometric_noise(round(count), epsilon=half, sensitivity=k, random_state=rs)
        noisy_scaled = geometric_noise(round(scaled), epsilon=half, sensitivity=sum_sens, random_state=rs)

        def mean_of(s, c, value=value):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(c >= 1, np.clip(s / value.scale / np.maximum(c, 1), value.lower, value.upper), np.nan)

        mean = float(mean_of(np.asarray([noisy_scaled]), np.asarray([noisy_count]))[0])
        bound = (
            simulated_half_width(mean_of, [noisy_scaled, noisy_count], [(half, sum_sens), (half, k)])
            if noisy_count >= 1
            else None
        )
        rows.append(
            {
                "group": _group(spec, key),
                "values": {"mean": _measure(mean, bound), "rows": _measure(max(noisy_count, 0), count_bound)},
            }
        )
    return rows, {"mechanism": "noisy sum / noisy count, epsilon split in half", "sensitivity": k}


def _histogram(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    labels, exact = bounding.exact_histogram(spec)
    bound = geometric_half_width(spec.epsilon, spec.k)
    rows = []
    for key in _keys(spec):
        counts = exact.get(key, [0.0] * len(labels))
        for i, label in enumerate(labels):
            rows.append(
                {
                    "group": _group(spec, key) | {"bin": label},
                    "values": {"rows": _measure(_count(counts[i], spec.epsilon, spec.k, rs), bound)},
                }
            )
    return rows, {"mechanism": "geometric", "sensitivity": spec.k}


def _quantile(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    value = spec.value
    assert value is not None
    exact = bounding.exact_values(spec)
    eps = spec.epsilon / spec.k  # a person moves at most k values: utility sensitivity k
    rows = []
    for key in _keys(spec):
        noisy = quantile_noise(
            exact.get(key, []), q=spec.q, epsilon=eps, bounds=(value.lower, value.upper), random_state=rs
        )
        rows.append({"group": _group(spec, key), "values": {"quantile": _measure(noisy, None)}})
    return rows, {
        "mechanism": "exponential mechanism (diffprivlib quantile) over declared bounds",
        "sensitivity": spec.k,
        "note": "the exponential mechanism has no data-independent 95% bound on the value; error_95 is null",
    }


def _funnel(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    exact = bounding.exact_funnel(spec)
    steps = len(spec.steps)
    bound = geometric_half_width(spec.epsilon, steps)
    rows = []
    for key in _keys(spec):
        counts = exact.get(key, [0.0] * steps)
        noisy = [_count(c, spec.epsilon, steps, rs) for c in counts]
        for j, (name, _) in enumerate(spec.steps):
            values = {"people": _measure(noisy[j], bound)}
            if j:
                conv = _rate(noisy[j], noisy[j - 1])
                conv_bound = (
                    simulated_half_width(_ratio, [noisy[j], noisy[j - 1]], [(spec.epsilon, steps)] * 2)
                    if conv is not None
                    else None
                )
                values["conversion"] = _measure(conv, conv_bound)
            rows.append({"group": _group(spec, key) | {"step": name}, "values": values})
    return rows, {"mechanism": "geometric, epsilon shared by the steps", "sensitivity": steps}


def _nps(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    exact = bounding.exact_latest_value(spec, "survey_response")
    bound = geometric_half_width(spec.epsilon, 1)

    def nps_of(p, pa, d):
        total = np.clip(p, 0, None) + np.clip(pa, 0, None) + np.clip(d, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                total >= 1, 100.0 * (np.clip(p, 0, None) - np.clip(d, 0, None)) / np.maximum(total, 1), np.nan
            )

    rows = []
    for key in _keys(spec):
        _, _, p, pa, d = exact.get(key, [0.0] * 5)
        noisy = [_count(x, spec.epsilon, 1, rs) for x in (p, pa, d)]
        value = float(nps_of(*[np.asarray([x]) for x in noisy])[0])
        nps_bound = simulated_half_width(nps_of, noisy, [(spec.epsilon, 1)] * 3) if sum(noisy) >= 1 else None
        rows.append(
            {
                "group": _group(spec, key),
                "values": {
                    "nps": _measure(value, nps_bound),
                    "promoters": _measure(noisy[0], bound),
                    "passives": _measure(noisy[1], bound),
                    "detractors": _measure(noisy[2], bound),
                },
            }
        )
    return rows, {"mechanism": "geometric histogram of each person's latest score", "sensitivity": 1}


def _csat(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    value = spec.value
    assert value is not None
    exact = bounding.exact_latest_value(spec, "survey_response")
    half = spec.epsilon / 2
    sum_sens = max(1, math.ceil(value.magnitude))

    def avg(s, c):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(c >= 1, np.clip(s / np.maximum(c, 1), value.lower, value.upper), np.nan)

    rows = []
    for key in _keys(spec):
        people, total = exact.get(key, [0.0] * 5)[:2]
        noisy_sum = geometric_noise(round(total), epsilon=half, sensitivity=sum_sens, random_state=rs)
        noisy_n = geometric_noise(round(people), epsilon=half, sensitivity=1, random_state=rs)
        mean = float(avg(np.asarray([noisy_sum]), np.asarray([noisy_n]))[0])
        bound = simulated_half_width(avg, [noisy_sum, noisy_n], [(half, sum_sens), (half, 1)]) if noisy_n >= 1 else None
        rows.append(
            {
                "group": _group(spec, key),
                "values": {
                    "csat": _measure(mean, bound),
                    "respondents": _measure(max(noisy_n, 0), geometric_half_width(half, 1)),
                },
            }
        )
    return rows, {"mechanism": "noisy sum / noisy count of each person's latest csat", "sensitivity": 1}


def _retention(spec: QuerySpec, rs) -> tuple[list[dict], dict]:
    exact = bounding.exact_retention(spec)
    sens = 1 + spec.periods
    bound = geometric_half_width(spec.epsilon, sens)
    rows = []
    for year, month in spec.window.months():
        cohort = year * 12 + month - 1
        size = _count(exact.get((cohort, 0), 0.0), spec.epsilon, sens, rs)
        rows.append(
            {"group": {"cohort": f"{year:04d}-{month:02d}", "month": 0}, "values": {"people": _measure(size, bound)}}
        )
        for offset in range(1, spec.periods + 1):
            back = _count(exact.get((cohort, offset), 0.0), spec.epsilon, sens, rs)
            rate = _rate(back, size)
            rate_bound = (
                simulated_half_width(_ratio, [back, size], [(spec.epsilon, sens)] * 2) if rate is not None else None
            )
            rows.append(
                {
                    "group": {"cohort": f"{year:04d}-{month:02d}", "month": offset},
                    "values": {"people": _measure(back, bound), "rate": _measure(rate, rate_bound)},
                }
            )
    return rows, {"mechanism": "geometric over cohort cells", "sensitivity": sens}


_COMPUTE = {
    "count": _people,
    "count_events": _rows_metric,
    "sum": _rows_metric,
    "mean": _rows_metric,
    "histogram": _histogram,
    "quantile": _quantile,
    "funnel": _funnel,
    "nps": _nps,
    "csat": _csat,
    "retention": _retention,
}


def dp_compute(spec: QuerySpec, *, random_state=None) -> dict:
    """Noisy answer of a parsed spec (no budget, no audit): the release body without metadata.

    Callers other than dp_query_release exist only in tests and benchmarks.
    """
    rows, info = _COMPUTE[spec.metric](spec, random_state)
    return {"metric": spec.metric, "group_by": [d.name for d in spec.group_by], "rows": rows, **info}


def _refuse(actor: Actor, code: str, details: dict) -> None:
    audit_record(actor=actor, action=AuditAction.DP_REFUSED, outcome=Outcome.DENIED, details={"code": code, **details})


def dp_query_release(*, actor: Actor, spec: Any, random_state=None, now=None) -> ReleaseResult:
    """Answer one DP query for `actor`, charging their budget and the dataset's (or not at all).

    Raises SpecError (bad spec), BudgetExhausted (not enough epsilon) or PermissionDenied; each
    is audited as dp.refused and charges nothing. `random_state` is for tests only.
    """
    actor.require_role(*DP_ROLES)
    try:
        parsed = spec_parse(spec)
    except SpecError as exc:
        _refuse(actor, "invalid_spec", {"path": exc.path[:200]})
        raise
    spec_hash = parsed.spec_hash
    period = period_bounds(now or timezone.now())
    epsilon = as_epsilon(parsed.epsilon)
    analyst_id = actor.actor_id
    key = {"analyst_id": analyst_id, "dataset": parsed.dataset, "period_start": period[0], "spec_hash": spec_hash}

    cached = DpRelease.objects.filter(**key).first()
    if cached is not None:
        return _serve_cached(actor, cached, parsed.dataset, period)

    try:
        budget_check(budget_accounts(analyst_id=analyst_id, dataset=parsed.dataset, period=period, lock=False), epsilon)
    except BudgetExhausted as exc:
        _refuse(actor, "budget_exhausted", {"scope": exc.scope, "epsilon": float(epsilon), "query_hash": spec_hash})
        raise

    result = dp_compute(parsed, random_state=random_state)

    try:
        with transaction.atomic():
            accounts = budget_accounts(analyst_id=analyst_id, dataset=parsed.dataset, period=period, lock=True)
            raced = DpRelease.objects.filter(**key).first()
            if raced is not None:  # an identical query won the race: serve it, discard ours
                served = raced
            else:
                budget_check(accounts, epsilon)
                budget_debit(accounts, epsilon)
                served = DpRelease.objects.create(
                    **key, metric=parsed.metric, spec=parsed.normalised, result=result, epsilon=epsilon
                )
                BudgetCharge.objects.bulk_create(
                    [
                        BudgetCharge(account=accounts.analyst, release=served, epsilon=epsilon),
                        BudgetCharge(account=accounts.dataset, release=served, epsilon=epsilon),
                    ]
                )
                audit_record(
                    actor=actor,
                    action=AuditAction.DP_RELEASE,
                    object_type="dp_release",
                    object_id=served.id,
                    details={
                        "query_hash": spec_hash,
                        "metric": parsed.metric,
                        "dataset": parsed.dataset,
                        "epsilon": float(epsilon),
                        "cached": False,
                    },
                )
                return ReleaseResult(served.id, False, spec_hash, float(epsilon), budget_summary(accounts), result)
    except BudgetExhausted as exc:
        _refuse(actor, "budget_exhausted", {"scope": exc.scope, "epsilon": float(epsilon), "query_hash": spec_hash})
        raise
    return _serve_cached(actor, served, parsed.dataset, period)


def _serve_cached(actor: Actor, release: DpRelease, dataset: str, period) -> ReleaseResult:
    with transaction.atomic():
        accounts = budget_accounts(analyst_id=actor.actor_id, dataset=dataset, period=period, lock=False)
        audit_record(
            actor=actor,
            action=AuditAction.DP_RELEASE,
            object_type="dp_release",
            object_id=release.id,
            details={"query_hash": release.spec_hash, "metric": release.metric, "epsilon": 0.0, "cached": True},
        )
    return ReleaseResult(release.id, True, release.spec_hash, 0.0, budget_summary(accounts), release.result)


def dp_budget_status(*, actor: Actor, dataset: str | None = None, now=None) -> dict:
    """The caller's and the dataset's epsilon for the current period (a read: not audited)."""
    actor.require_role(*DP_ROLES)
    dataset = dataset or settings.CDP_DP_DEFAULT_DATASET
    if dataset not in settings.CDP_DP_DATASETS:
        raise SpecError("$.dataset", f"unknown dataset; allowed: {', '.join(settings.CDP_DP_DATASETS)}")
    period = period_bounds(now or timezone.now())
    return budget_summary(budget_accounts(analyst_id=actor.actor_id, dataset=dataset, period=period, lock=False))


__all__ = ["BudgetExhausted", "ReleaseResult", "SpecError", "dp_budget_status", "dp_compute", "dp_query_release"]
