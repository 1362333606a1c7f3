"""The DP query spec: validated, normalised and hashed before anything touches the data.

Why strict: a misspelt option silently ignored could change what is released (and what it
costs), so every unknown key, metric, trait or bound is a `SpecError` carrying the JSON path of
the bad node; nothing is charged for it. The normalised spec (defaults filled in, keys sorted)
is what the release cache is keyed on, so two spellings of one query cost once.

Group-by keys come only from public domains declared up front (registry enums, channel, journey
stage, calendar buckets inside the window); every key of the domain is released and no other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import F, Func, IntegerField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, ExtractMonth, ExtractYear
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cdp.models import Channel, JourneyStage, TraitDefinition
from cdp.services.rules import KEY_RE, Registry, RuleError, rules_compile

METRICS = ("count", "count_events", "sum", "mean", "histogram", "quantile", "funnel", "nps", "retention", "csat")

# The shared event vocabulary of the customer-experience model (ingestion uses the same names).
JOURNEY_EVENTS: dict[str, list[str]] = {
    JourneyStage.AWARENESS: ["page_view", "ad_click"],
    JourneyStage.CONSIDERATION: ["product_view", "add_to_cart"],
    JourneyStage.PURCHASE: ["purchase"],
    JourneyStage.USE: ["product_use", "app_open"],
    JourneyStage.LOYALTY: ["loyalty_join", "repeat_purchase", "referral"],
}
SURVEY_EVENT = "survey_response"
PURCHASE_EVENT = "purchase"
NPS_PROPERTY = "score"
CSAT_PROPERTY = "csat"

COMMON_OPTIONS = {"metric", "dataset", "epsilon", "population", "segment_id", "window", "group_by"}
METRIC_OPTIONS: dict[str, set[str]] = {
    "count": {"event", "max_rows_per_person"},
    "count_events": {"event", "max_rows_per_person"},
    "sum": {"event", "value", "max_rows_per_person"},
    "mean": {"event", "value", "max_rows_per_person"},
    "histogram": {"event", "value", "bins", "max_rows_per_person"},
    "quantile": {"event", "value", "q", "max_rows_per_person"},
    "funnel": {"steps"},
    "nps": set(),
    "retention": {"periods"},
    "csat": set(),
}
# Journey metrics bound each person to one group, so only person-level dimensions may split them.
PROFILE_DIMENSIONS_ONLY = {"funnel", "nps", "csat"}
NO_GROUP_BY = {"retention"}
MAX_GROUP_BY = 2
MAX_MONTHS = 36


class SpecError(RuleError):
    """An invalid spec; `path` is the JSON path of the offending node (same shape as a rule error,
    so the population's rule errors surface unchanged under `$.population...`)."""


@dataclass(frozen=True)
class Dimension:
    """A public group-by domain: the keys released, and the SQL expression that buckets a row.

    `level` is "profile" (constant per person: a person falls in one key) or "event" (a person's
    rows may spread over several keys, which the engine accounts for in the sensitivity).
    """

    name: str
    level: str
    domain: tuple[Any, ...]
    labels: tuple[str, ...]
    kind: str
    key: str = ""

    def expression(self, *, on_events: bool):
        prefix = "profile__" if on_events else ""
        if self.kind == "channel":
            return F("channel")
        if self.kind == "journey_stage":
            return F(f"{prefix}journey_stage")
        if self.kind == "trait":
            return KeyTextTransform(self.key, f"{prefix}attributes")
        if self.kind == "property":
            return KeyTextTransform(self.key, "properties")
        if self.kind == "month":
            return ExtractYear("occurred_at") * Value(100) + ExtractMonth("occurred_at")
        if self.kind == "weekday":
            return ExtractIsoWeekDay("occurred_at")
        if self.kind == "hour":
            return ExtractHour("occurred_at")
        raise AssertionError(self.kind)

    def normalise(self, raw: Any) -> Any:
        """Map a raw SQL value onto a domain value (None if outside the domain)."""
        if raw is None:
            return None
        if self.kind in {"month", "weekday", "hour"}:
            try:
                value: Any = int(raw)
            except (TypeError, ValueError):
                return None
        else:
            value = str(raw)
        return value if value in self._index else None

    @property
    def _index(self) -> frozenset:
        return frozenset(self.domain)

    def label(self, value: Any) -> str:
        return self.labels[self.domain.index(value)]


@dataclass(frozen=True)
class Window:
    start: dt.datetime | None
    end: dt.datetime | None

    def months(self) -> list[tuple[int, int]]:
        assert self.start is not None and self.end is not None
        year, month = self.start.year, self.start.month
        last = self.end - dt.timedelta(microseconds=1)
        out = []
        while (year, month) <= (last.year, last.month):
            out.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


@dataclass(frozen=True)
class NumericField:
    key: str
    lower: float
    upper: float
    scale: int  # values are rounded to 1/scale before integer-valued noise

    @property
    def magnitude(self) -> float:
        return max(abs(self.lower), abs(self.upper))


@dataclass(frozen=True)
class QuerySpec:
    metric: str
    dataset: str
    epsilon: float
    population: dict
    window: Window
    group_by: tuple[Dimension, ...]
    event: str = ""
    value: NumericField | None = None
    value_enum: tuple[str, ...] = ()
    bins: int = 0
    q: float = 0.5
    k: int = 1
    steps: tuple[tuple[str, tuple[str, ...]], ...] = ()
    periods: int = 0
    normalised: dict = field(default_factory=dict)

    @property
    def spec_hash(self) -> str:
        blob = json.dumps(self.normalised, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _parse_time(value: Any, path: str) -> dt.datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise SpecError(path, "must be an ISO 8601 date-time")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


def _window(raw: Any, needed: bool, reason: str) -> Window:
    if raw is None:
        if needed:
            raise SpecError("$.window", f"is required {reason}")
        return Window(None, None)
    if not isinstance(raw, dict):
        raise SpecError("$.window", "must be an object with start and end")
    unknown = sorted(set(raw) - {"start", "end"})
    if unknown:
        raise SpecError(f"$.window.{unknown[0]}", "unknown option; allowed: start, end")
    for key in ("start", "end"):
        if key not in raw:
            raise SpecError(f"$.window.{key}", "is required")
    start, end = _parse_time(raw["start"], "$.window.start"), _parse_time(raw["end"], "$.window.end")
    if end <= start:
        raise SpecError("$.window.end", "must be after start")
    window = Window(start.astimezone(dt.UTC), end.astimezone(dt.UTC))
    if len(window.months()) > MAX_MONTHS:
        raise SpecError("$.window", f"spans more than {MAX_MONTHS} months")
    return window


def _dimension(name: Any, path: str, registry: Registry, window: Window) -> Dimension:
    if not isinstance(name, str):
        raise SpecError(path, "must be a dimension name")
    if name == "channel":
        return Dimension(name, "event", tuple(Channel.values), tuple(Channel.values), "channel")
    if name == "journey_stage":
        return Dimension(name, "profile", tuple(JourneyStage.values), tuple(JourneyStage.values), "journey_stage")
    if name in {"month", "weekday", "hour"}:
        if name == "month":
            if window.start is None:
                raise SpecError("$.window", "is required to group by month (its months are the public domain)")
            months = window.months()
            domain = tuple(y * 100 + m for y, m in months)
            return Dimension(name, "event", domain, tuple(f"{y:04d}-{m:02d}" for y, m in months), "month")
        if name == "weekday":
            return Dimension(name, "event", tuple(range(1, 8)), tuple(str(d) for d in range(1, 8)), "weekday")
        return Dimension(name, "event", tuple(range(24)), tuple(str(h) for h in range(24)), "hour")
    kind, _, key = name.partition(":")
    if kind in {"trait", "property"} and key:
        table = registry.traits if kind == "trait" else registry.properties
        definition = table.get(key) if KEY_RE.match(key) and "__" not in key else None
        if definition is None:
            raise SpecError(path, f"unknown {kind}, or not declared filterable and non-personal")
        if definition.data_type != TraitDefinition.DataType.ENUM or not definition.enum_values:
            raise SpecError(path, f"{kind} '{key}' has no declared enum domain; only enums can be grouped by")
        values = tuple(str(v) for v in definition.enum_values)
        return Dimension(name, "profile" if kind == "trait" else "event", values, values, kind, key)
    raise SpecError(
        path, "unknown dimension; allowed: channel, journey_stage, month, weekday, hour, trait:<key>, property:<key>"
    )


def _numeric(key: Any, path: str, registry: Registry) -> NumericField:
    if not isinstance(key, str) or not KEY_RE.match(key) or "__" in key or key not in registry.properties:
        raise SpecError(path, "unknown event property, or not declared filterable and non-personal")
    definition = registry.properties[key]
    if definition.data_type not in {TraitDefinition.DataType.INTEGER, TraitDefinition.DataType.DECIMAL}:
        raise SpecError(path, f"property '{key}' is not numeric")
    if definition.lower_bound is None or definition.upper_bound is None:
        raise SpecError(path, f"property '{key}' has no declared bounds; bounds are never read from the data")
    scale = 1 if definition.data_type == TraitDefinition.DataType.INTEGER else settings.CDP_DP_DECIMAL_SCALE
    return NumericField(key, float(definition.lower_bound), float(definition.upper_bound), scale)


def _int_option(raw: dict, key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"$.{key}", f"must be an integer from {low} to {high}")
    return value


def _event_name(raw: dict, required: bool) -> str:
    if "event" not in raw:
        if required:
            raise SpecError("$.event", "is required for this metric")
        return ""
    name = raw["event"]
    if not isinstance(name, str) or not name or len(name) > 128:
        raise SpecError("$.event", "must be an event name")
    return name


def _segment_population(raw_id: Any) -> tuple[dict, dict[str, int]]:
    """A segment's current definition as the population (the rule tree, evaluated live in SQL,
    not its last materialised membership, so the answer never lags behind a refresh)."""
    from cdp.segment_models import Segment

    if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id < 1:
        raise SpecError("$.segment_id", "must be a segment id (a positive integer)")
    segment = Segment.objects.filter(pk=raw_id).only("id", "definition", "version").first()
    if segment is None:
        raise SpecError("$.segment_id", "no such segment")
    return segment.definition, {"id": segment.id, "version": segment.version}


def spec_parse(raw: Any, *, registry: Registry | None = None) -> QuerySpec:
    """Validate a JSON spec and return the normalised QuerySpec (or raise SpecError)."""
    if not isinstance(raw, dict):
        raise SpecError("$", "must be a JSON object")
    metric = raw.get("metric")
    if metric not in METRICS:
        raise SpecError("$.metric", f"unknown metric; allowed: {', '.join(METRICS)}")
    allowed = COMMON_OPTIONS | METRIC_OPTIONS[metric]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SpecError(f"$.{unknown[0]}", f"unknown option for {metric}; allowed: {', '.join(sorted(allowed))}")
    registry = registry or Registry.load()

    dataset = raw.get("dataset", settings.CDP_DP_DEFAULT_DATASET)
    if dataset not in settings.CDP_DP_DATASETS:
        raise SpecError("$.dataset", f"unknown dataset; allowed: {', '.join(settings.CDP_DP_DATASETS)}")
    epsilon = raw.get("epsilon")
    low, high = settings.CDP_DP_EPSILON_MIN, settings.CDP_DP_EPSILON_MAX
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not math.isfinite(epsilon):
        raise SpecError("$.epsilon", f"is required: a number from {low} to {high}")
    if not low <= epsilon <= high:
        raise SpecError("$.epsilon", f"must be from {low} to {high}")
    epsilon = round(float(epsilon), 6)

    segment_ref: dict[str, int] | None = None
    if "segment_id" in raw:
        if "population" in raw:
            raise SpecError("$.segment_id", "name either segment_id or population, not both")
        population, segment_ref = _segment_population(raw["segment_id"])
    else:
        population = raw.get("population") or {}
    try:
        rules_compile(population, path="$.population", registry=registry)
    except RuleError as exc:
        raise SpecError(exc.path, exc.message) from exc

    group_raw = raw.get("group_by", [])
    if isinstance(group_raw, str):
        group_raw = [group_raw]
    if not isinstance(group_raw, list) or len(group_raw) > MAX_GROUP_BY:
        raise SpecError("$.group_by", f"must be a list of at most {MAX_GROUP_BY} dimensions")
    if len(set(map(str, group_raw))) != len(group_raw):
        raise SpecError("$.group_by", "lists a dimension twice")
    if group_raw and metric in NO_GROUP_BY:
        raise SpecError("$.group_by", f"{metric} cannot be grouped")
    window = _window(raw.get("window"), metric == "retention", "for retention (its months are the cohorts)")
    dims = tuple(_dimension(d, f"$.group_by[{i}]", registry, window) for i, d in enumerate(group_raw))
    if metric in PROFILE_DIMENSIONS_ONLY:
        for i, dim in enumerate(dims):
            if dim.level != "profile":
                raise SpecError(f"$.group_by[{i}]", f"{metric} can be grouped only by person-level dimensions")

    kwargs: dict[str, Any] = {}
    norm: dict[str, Any] = {
        "metric": metric,
        "dataset": dataset,
        "epsilon": epsilon,
        "population": population,
        # The segment and its definition version are part of the cache key: a changed definition
        # is a new question, not a repeat that may reuse an older release.
        "segment": segment_ref,
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()} if window.start else None,
        "group_by": [d.name for d in dims],
    }
    k_default = 1 if metric == "quantile" else settings.CDP_DP_MAX_ROWS_PER_PERSON
    if metric in {"count", "count_events", "sum", "mean", "histogram", "quantile"}:
        kwargs["k"] = _int_option(raw, "max_rows_per_person", k_default, 1, settings.CDP_DP_MAX_ROWS_LIMIT)
        kwargs["event"] = _event_name(raw, required=False)
        norm["max_rows_per_person"] = kwargs["k"]
        norm["event"] = kwargs["event"]
    if metric in {"sum", "mean", "quantile", "histogram"}:
        if "value" not in raw:
            raise SpecError("$.value", "is required: a numeric event property with declared bounds")
        value_key = raw["value"]
        definition = registry.properties.get(value_key) if isinstance(value_key, str) else None
        if metric == "histogram" and definition is not None and definition.data_type == TraitDefinition.DataType.ENUM:
            kwargs["value_enum"] = tuple(str(v) for v in definition.enum_values)
            if "bins" in raw:
                raise SpecError("$.bins", "an enum property is binned by its declared domain")
            norm["value"] = value_key
        else:
            kwargs["value"] = _numeric(value_key, "$.value", registry)
            norm["value"] = value_key
            if metric == "histogram":
                kwargs["bins"] = norm["bins"] = _int_option(raw, "bins", 10, 2, 50)
    if metric == "quantile":
        q = raw.get("q", 0.5)
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
            raise SpecError("$.q", "must be a number strictly between 0 and 1")
        kwargs["q"] = norm["q"] = float(q)
    if metric == "funnel":
        steps_raw = raw.get("steps", list(JourneyStage.values))
        if not isinstance(steps_raw, list) or not 2 <= len(steps_raw) <= 10:
            raise SpecError("$.steps", "must be a list of 2 to 10 journey stages or event names")
        steps = []
        for i, step in enumerate(steps_raw):
            if not isinstance(step, str) or not step or len(step) > 128:
                raise SpecError(f"$.steps[{i}]", "must be a journey stage or an event name")
            steps.append((step, tuple(JOURNEY_EVENTS.get(step, [step]))))
        kwargs["steps"] = tuple(steps)
        norm["steps"] = [s for s, _ in steps]
    if metric == "retention":
        kwargs["periods"] = norm["periods"] = _int_option(raw, "periods", 3, 1, 12)
    if metric in {"nps", "csat"}:
        key = NPS_PROPERTY if metric == "nps" else CSAT_PROPERTY
        kwargs["value"] = _numeric(key, "$.metric", registry)
    return QuerySpec(
        metric=metric,
        dataset=dataset,
        epsilon=epsilon,
        population=population,
        window=window,
        group_by=dims,
        normalised=norm,
        **kwargs,
    )


def month_index():
    """Months since year 0 of an event's occurred_at: portable SQL for cohort arithmetic."""
    return Func(
        ExtractYear("occurred_at") * Value(12) + ExtractMonth("occurred_at") - Value(1),
        function="",
        output_field=IntegerField(),
    )
