from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-key request rate (API_RATE_LIMIT, default 6000/min); unauthenticated calls by address."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        # Read the setting at request time (DRF's default binds it at import).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        actor = getattr(request, "actor", None)
        ident = actor.actor_id if actor is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
