"""`Authorization: Bearer <key>` authentication, and the Actor each request carries."""

from __future__ import annotations

import re

from django.http import HttpRequest
from rest_framework import authentication, exceptions

from api.keys import api_key_check, split_key
from api.models import ApiKey
from api.permissions import route_of
from cdp.actor import Actor, ActorKind
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.crypto import keyed_hash

_PREFIX = re.compile(r"[0-9a-f]{12}")


def client_hash(request: HttpRequest) -> str:
    return keyed_hash(domain="client_addr", value=request.META.get("REMOTE_ADDR", ""))


def actor_for_key(request: HttpRequest, api_key: ApiKey, *, purpose: str = "") -> Actor:
    return Actor(
        kind=ActorKind.API_KEY,
        actor_id=f"key:{api_key.prefix}",
        role=api_key.role,
        purpose=purpose,
        request_id=getattr(request, "request_id", ""),
        source_id=api_key.source_id,
        client_hash=client_hash(request),
        name=api_key.name,
    )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            self._deny(request, "malformed")
            raise exceptions.AuthenticationFailed("use 'Authorization: Bearer <key>'")
        raw = raw.strip()
        api_key = api_key_check(raw)
        if api_key is None:
            parts = split_key(raw)
            # Only the prefix of a key that exists is recorded (wrong secret, revoked): anything else
            # is whatever the client sent, which may be personal data (a 12-digit phone number is a
            # well-formed prefix) and must not reach the audit trail.
            prefix = parts[0] if parts and _PREFIX.fullmatch(parts[0]) else ""
            if prefix and not ApiKey.objects.filter(prefix=prefix).exists():
                prefix = ""
            self._deny(request, "invalid_or_revoked", prefix=prefix)
            raise exceptions.AuthenticationFailed("the API key is invalid or revoked")
        request.actor = actor_for_key(request, api_key)
        return api_key, api_key

    def authenticate_header(self, request) -> str:
        return self.keyword

    @staticmethod
    def _deny(request, reason: str, *, prefix: str = "") -> None:
        actor = Actor(
            kind=ActorKind.API_KEY,
            actor_id=f"key:{prefix}" if prefix else "key:unknown",
            role="",
            request_id=getattr(request, "request_id", ""),
            client_hash=client_hash(request),
        )
        audit_record(
            actor=actor,
            action=AuditAction.AUTH_DENIED,
            outcome=Outcome.DENIED,
            details={"reason": reason, "route": route_of(request)},
        )
