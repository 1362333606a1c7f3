"""The rule-tree compiler: a JSON filter tree over profiles -> a Django ``Q`` (hence SQL).

Why one module: DP analytics (the `population` of a query) and segments use the same tree, so
they must agree on its meaning. The tree is validated against the trait registry before any SQL
exists; every error names the JSON path of the offending node (``$.all[1].value``).

User strings never reach SQL text: trait and property keys must exist in the registry (and match
``[a-z][a-z0-9_]*`` without ``__``), and every value travels as a query parameter through the
ORM's lookups (JSON keys are parameters too on PostgreSQL and SQLite).

Grammar::

    node   := {"all": [node, ...]} | {"any": [node, ...]} | {"not": node} | leaf
    leaf   := {"type": "trait", "key": K, "op": OP, "value": V}
            | {"type": "journey_stage", "op": OP, "value": V}
            | {"type": "channel", "op": OP, "value": V}        # has an event in that channel
            | {"type": "event", "name": E, "min_count": N, "max_count": M,
               "within_days": D | "since": ISO, "until": ISO,
               "channel": C, "where": [{"property": P, "op": OP, "value": V}, ...]}
            | {"type": "nps_band", "value": detractor|passive|promoter, "within_days": D}
            | {"type": "consent", "purpose": CODE, "channel": C, "state": granted|not_granted}
    OP     := eq | ne | in | not_in | exists | not_exists | gt | gte | lt | lte | between

Traits: registry entries of kind ``trait`` that are filterable and non-personal (personal traits
are sealed and cannot be filtered). Enum traits accept only values of their declared domain.
Personal identifiers (email, phone, WeChat ids...) are never traits and are refused by name.

NPS band: the person answered the survey (event ``survey_response``, property ``score``, 0-10)
in that band (detractor 0-6, passive 7-8, promoter 9-10) at least once within the window
(default 365 days). Consent: the person may (``granted``) or may not (``not_granted``) be
processed for the purpose and channel right now, by consent.enforcement (restrictions,
objections and non-active profiles count as not granted).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cdp.models import Channel, Event, JourneyStage, Profile, TraitDefinition

MAX_DEPTH = 8
MAX_NODES = 100
MAX_IN_VALUES = 200
MAX_STRING = 256
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

EQUALITY_OPS = {"eq", "ne", "in", "not_in", "exists", "not_exists"}
RANGE_OPS = {"gt", "gte", "lt", "lte", "between"}
ALL_OPS = EQUALITY_OPS | RANGE_OPS
NUMERIC_TYPES = {TraitDefinition.DataType.INTEGER, TraitDefinition.DataType.DECIMAL}


class RuleError(ValueError):
    """An invalid rule tree. `path` is the JSON path of the bad node (``$`` is the root)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message

    def as_details(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class Registry:
    """Filterable, non-personal registry entries by kind, loaded once per compilation."""

    traits: dict[str, TraitDefinition]
    properties: dict[str, TraitDefinition]

    @classmethod
    def load(cls) -> Registry:
        rows = TraitDefinition.objects.filter(filterable=True, personal=False)
        traits = {t.key: t for t in rows if t.kind == TraitDefinition.Kind.TRAIT}
        properties = {t.key: t for t in rows if t.kind == TraitDefinition.Kind.PROPERTY}
        return cls(traits=traits, properties=properties)


def _check_keys(node: dict, allowed: set[str], required: set[str], path: str) -> None:
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise RuleError(f"{path}.{unknown[0]}", f"unknown option; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(node))
    if missing:
        raise RuleError(f"{path}.{missing[0]}", "is required")


def _scalar_ok(value: Any, definition: TraitDefinition | None, path: str) -> Any:
    """Check one comparison value against the declared type (and enum domain)."""
    dtype = definition.data_type if definition is not None else TraitDefinition.DataType.STRING
    if dtype in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(path, "must be a number")
        if dtype == TraitDefinition.DataType.INTEGER and isinstance(value, float) and not value.is_integer():
            raise RuleError(path, "must be an integer")
        return value
    if dtype == TraitDefinition.DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise RuleError(path, "must be true or false")
        return value
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise RuleError(path, f"must be a string of at most {MAX_STRING} characters")
    if dtype == TraitDefinition.DataType.ENUM and definition is not None and value not in definition.enum_values:
        raise RuleError(path, "is not in the declared domain of this enum")
    return value


def _json_condition(field: str, key: str, op: str, value: Any, definition: TraitDefinition | None, path: str) -> Q:
    """A condition on one key of a JSON column (`attributes` or `properties`)."""
    lookup = f"{field}__{key}"
    vpath = f"{path}.value"
    dtype = definition.data_type if definition is not None else TraitDefinition.DataType.STRING
    if op in RANGE_OPS and dtype not in NUMERIC_TYPES:
        raise RuleError(f"{path}.op", f"'{op}' needs a numeric trait (integer or decimal)")
    if op in {"exists", "not_exists"}:
        if value not in (None, True):
            raise RuleError(vpath, "takes no value")
        q = Q(**{f"{field}__has_key": key})
        return q if op == "exists" else ~q
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise RuleError(vpath, f"must be a non-empty list of at most {MAX_IN_VALUES} values")
        values = [_scalar_ok(v, definition, f"{vpath}[{i}]") for i, v in enumerate(value)]
        q = Q(**{f"{lookup}__in": values})
        return q if op == "in" else (Q(**{f"{field}__has_key": key}) & ~q)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(vpath, "must be [low, high]")
        low, high = (_scalar_ok(v, definition, f"{vpath}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise RuleError(vpath, "low must not exceed high")
        return Q(**{f"{lookup}__gte": low, f"{lookup}__lte": high})
    checked = _scalar_ok(value, definition, vpath)
    if op == "eq":
        return Q(**{lookup: checked})
    if op == "ne":
        return Q(**{f"{field}__has_key": key}) & ~Q(**{lookup: checked})
    return Q(**{f"{lookup}__{op}": checked})


def _choice_condition(column: str, choices: list[str], op: str, value: Any, path: str) -> Q:
    if op not in EQUALITY_OPS - {"exists", "not_exists"}:
        raise RuleError(f"{path}.op", "allowed: eq, ne, in, not_in")
    values = value if op in {"in", "not_in"} else [value]
    if op in {"in", "not_in"} and (not isinstance(value, list) or not value):
        raise RuleError(f"{path}.value", "must be a non-empty list")
    for i, v in enumerate(values):
        if v not in choices:
            where = f"{path}.value[{i}]" if op in {"in", "not_in"} else f"{path}.value"
            raise RuleError(where, f"must be one of: {', '.join(choices)}")
    q = Q(**{f"{column}__in": values})
    return ~q if op in {"ne", "not_in"} else q


def _parse_time(value: Any, path: str) -> dt.datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise RuleError(path, "must be an ISO 8601 date-time")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


def _event_condition(node: dict, registry: Registry, path: str, now: dt.datetime) -> Q:
    _check_keys(
        node,
        {"type", "name", "min_count", "max_count", "within_days", "since", "until", "channel", "where"},
        {"name"},
        path,
    )
    name = node["name"]
    if not isinstance(name, str) or not name or len(name) > 128:
        raise RuleError(f"{path}.name", "must be an event name")
    events = Event.objects.filter(name=name)
    min_count = node.get("min_count", 1)
    max_count = node.get("max_count")
    for field, bound in (("min_count", min_count), ("max_count", max_count)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or not 1 <= bound <= 100000):
            raise RuleError(f"{path}.{field}", "must be an integer from 1 to 100000")
    if max_count is not None and max_count < min_count:
        raise RuleError(f"{path}.max_count", "must not be below min_count")
    if "within_days" in node:
        if "since" in node:
            raise RuleError(f"{path}.since", "use within_days or since, not both")
        days = node["within_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise RuleError(f"{path}.within_days", "must be an integer from 1 to 3660")
        events = events.filter(occurred_at__gte=now - dt.timedelta(days=days))
    if "since" in node:
        events = events.filter(occurred_at__gte=_parse_time(node["since"], f"{path}.since"))
    if "until" in node:
        events = events.filter(occurred_at__lt=_parse_time(node["until"], f"{path}.until"))
    if "channel" in node:
        if node["channel"] not in Channel.values:
            raise RuleError(f"{path}.channel", f"must be one of: {', '.join(Channel.values)}")
        events = events.filter(channel=node["channel"])
    where = node.get("where", [])
    if not isinstance(where, list) or len(where) > 20:
        raise RuleError(f"{path}.where", "must be a list of at most 20 property conditions")
    for i, cond in enumerate(where):
        cpath = f"{path}.where[{i}]"
        if not isinstance(cond, dict):
            raise RuleError(cpath, "must be an object")
        _check_keys(cond, {"property", "op", "value"}, {"property", "op"}, cpath)
        key = cond["property"]
        if not isinstance(key, str) or not KEY_RE.match(key) or "__" in key or key not in registry.properties:
            raise RuleError(f"{cpath}.property", "unknown or non-filterable event property")
        op = cond["op"]
        if op not in ALL_OPS:
            raise RuleError(f"{cpath}.op", f"unknown operator; allowed: {', '.join(sorted(ALL_OPS))}")
        events = events.filter(
            _json_condition("properties", key, op, cond.get("value"), registry.properties[key], cpath)
        )
    counted = events.values("profile_id").annotate(n=Count("id")).filter(n__gte=min_count)
    if max_count is not None:
        counted = counted.filter(n__lte=max_count)
    return Q(id__in=counted.values("profile_id"))


def _compile(node: Any, registry: Registry, path: str, depth: int, budget: list[int], now: dt.datetime) -> Q:
    if depth > MAX_DEPTH:
        raise RuleError(path, f"the tree is deeper than {MAX_DEPTH} levels")
    budget[0] += 1
    if budget[0] > MAX_NODES:
        raise RuleError(path, f"the tree has more than {MAX_NODES} nodes")
    if not isinstance(node, dict):
        raise RuleError(path, "must be an object")
    for group in ("all", "any"):
        if group in node:
            _check_keys(node, {group}, {group}, path)
            children = node[group]
            if not isinstance(children, list) or not children:
                raise RuleError(f"{path}.{group}", "must be a non-empty list")
            qs = [_compile(c, registry, f"{path}.{group}[{i}]", depth + 1, budget, now) for i, c in enumerate(children)]
            result = qs[0]
            for q in qs[1:]:
                result = (result & q) if group == "all" else (result | q)
            return result
    if "not" in node:
        _check_keys(node, {"not"}, {"not"}, path)
        inner = _compile(node["not"], registry, f"{path}.not", depth + 1, budget, now)
        # A set complement, not SQL NOT: NOT over a missing JSON key is NULL, which would drop
        # profiles without the key from both a condition and its negation.
        return ~Q(id__in=Profile.objects.filter(inner).values("id"))
    kind = node.get("type")
    if kind == "event":
        return _event_condition(node, registry, path, now)
    if kind == "nps_band":
        return _nps_condition(node, path, now)
    if kind == "consent":
        return _consent_condition(node, path)
    if kind not in {"trait", "journey_stage", "channel"}:
        raise RuleError(
            f"{path}.type",
            "must be one of: trait, journey_stage, channel, event, nps_band, consent (or use all/any/not)",
        )
    op = node.get("op")
    if op not in ALL_OPS:
        raise RuleError(f"{path}.op", f"unknown operator; allowed: {', '.join(sorted(ALL_OPS))}")
    if kind == "trait":
        _check_keys(node, {"type", "key", "op", "value"}, {"key", "op"}, path)
        key = node["key"]
        _not_an_identifier(key, f"{path}.key")
        if not isinstance(key, str) or not KEY_RE.match(key) or "__" in key or key not in registry.traits:
            raise RuleError(f"{path}.key", "unknown trait, or not declared filterable and non-personal")
        return _json_condition("attributes", key, op, node.get("value"), registry.traits[key], path)
    _check_keys(node, {"type", "op", "value"}, {"op", "value"}, path)
    if kind == "journey_stage":
        return _choice_condition("journey_stage", list(JourneyStage.values), op, node["value"], path)
    channel_q = _choice_condition("channel", list(Channel.values), op, node["value"], path)
    negate = op in {"ne", "not_in"}
    positive = ~channel_q if negate else channel_q
    having = Q(id__in=Event.objects.filter(positive).values("profile_id"))
    return ~having if negate else having


NPS_BANDS = {"detractor": (0, 6), "passive": (7, 8), "promoter": (9, 10)}
NPS_EVENT = "survey_response"
NPS_PROPERTY = "score"


def _nps_condition(node: dict, path: str, now: dt.datetime) -> Q:
    _check_keys(node, {"type", "value", "within_days"}, {"value"}, path)
    band = node["value"]
    if band not in NPS_BANDS:
        raise RuleError(f"{path}.value", f"must be one of: {', '.join(NPS_BANDS)}")
    days = node.get("within_days", 365)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise RuleError(f"{path}.within_days", "must be an integer from 1 to 3660")
    low, high = NPS_BANDS[band]
    events = Event.objects.filter(
        name=NPS_EVENT,
        occurred_at__gte=now - dt.timedelta(days=days),
        **{f"properties__{NPS_PROPERTY}__gte": low, f"properties__{NPS_PROPERTY}__lte": high},
    )
    return Q(id__in=events.values("profile_id"))


def _consent_condition(node: dict, path: str) -> Q:
    from consent.enforcement import profiles_consented_for  # consent depends on cdp, not the reverse
    from consent.models import Purpose

    _check_keys(node, {"type", "purpose", "channel", "state"}, {"purpose"}, path)
    code = node["purpose"]
    if not isinstance(code, str) or not Purpose.objects.filter(code=code).exists():
        raise RuleError(f"{path}.purpose", "unknown purpose")
    channel = node.get("channel")
    if channel is not None and (not isinstance(channel, str) or not KEY_RE.match(channel)):
        raise RuleError(f"{path}.channel", "must be a channel name such as sms, email or wechat")
    state = node.get("state", "granted")
    if state not in {"granted", "not_granted"}:
        raise RuleError(f"{path}.state", "must be granted or not_granted")
    allowed = profiles_consented_for(Profile.objects.all(), purpose=code, channel=channel).values("id")
    return Q(id__in=allowed) if state == "granted" else ~Q(id__in=allowed)


def _not_an_identifier(key: Any, path: str) -> None:
    from identity.registry import identifier_types

    if isinstance(key, str) and key in identifier_types():
        raise RuleError(path, "personal identifiers cannot be used in rules")


def rules_compile(tree: Any, *, path: str = "$", registry: Registry | None = None, now: dt.datetime | None = None) -> Q:
    """Validate a rule tree and compile it into a ``Q`` over ``Profile``.

    An empty tree (``None`` or ``{}``) matches everyone. Raises RuleError with the JSON path.
    """
    if tree is None or tree == {}:
        return Q()
    return _compile(tree, registry or Registry.load(), path, 1, [0], now or timezone.now())
