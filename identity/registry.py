"""The registry of identifier types: strength, priority and per-type limits.

Why a registry: which identifiers may glue two records into one person is the single most
consequential rule of the platform. Each type declares
- `strength`: "strong" (issued by the brand to one person: external_id, loyalty_id, WeChat
  UnionID), "medium" (personal contact points: email, phone, WeChat OpenID) or "weak" (devices
  and cookies, which households share);
- `priority`: the order in which a message's identifiers choose its profile (lower first);
- `max_per_profile`: how many of this type one profile may hold. A type with limit 1 is
  *exclusive*: two profiles holding different values of it never merge.
- `max_profiles`: for weak types, how many distinct identified profiles one value may touch in
  `window_days` before it is marked over its limit and no longer used for resolution.

Settings may override any field: CDP_IDENTIFIER_TYPES = {"email": {"max_per_profile": 5}}.
New types are added here (and documented in docs/identity.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings


@dataclass(frozen=True)
class IdentifierType:
    name: str
    strength: str  # strong | medium | weak
    priority: int
    max_per_profile: int
    normaliser: str  # email | phone | id
    max_profiles: int = 0  # weak types only: distinct identified profiles per window
    window_days: int = 30

    @property
    def exclusive(self) -> bool:
        return self.max_per_profile == 1

    @property
    def weak(self) -> bool:
        return self.strength == "weak"


_DEFAULTS: tuple[IdentifierType, ...] = (
    IdentifierType("external_id", "strong", 10, 1, "id"),
    IdentifierType("loyalty_id", "strong", 20, 1, "id"),
    IdentifierType("wechat_unionid", "strong", 30, 1, "id"),
    IdentifierType("phone", "medium", 40, 3, "phone"),
    IdentifierType("email", "medium", 50, 3, "email"),
    IdentifierType("wechat_openid", "medium", 60, 5, "id"),
    IdentifierType("device_id", "weak", 70, 10, "id", max_profiles=3, window_days=30),
    IdentifierType("cookie_id", "weak", 80, 20, "id", max_profiles=3, window_days=30),
)


def identifier_types() -> dict[str, IdentifierType]:
    """The active registry, with overrides from settings.CDP_IDENTIFIER_TYPES applied."""
    overrides: dict[str, dict] = getattr(settings, "CDP_IDENTIFIER_TYPES", {}) or {}
    types = {t.name: t for t in _DEFAULTS}
    for name, fields in overrides.items():
        base = types.get(name) or IdentifierType(name, "medium", 100, 3, "id")
        types[name] = replace(base, **fields)
    return types


def identifier_type(name: str) -> IdentifierType | None:
    return identifier_types().get(name)
