"""Creating, checking and revoking API keys (the service layer for keys)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from api.models import ApiKey
from cdp.actor import Actor, Role
from cdp.models import Channel, Source
from privacy.audit import AuditAction, audit_record

KEY_PREFIX = "cdp"
_LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A key could not be created or revoked as asked (message is safe to show)."""


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(raw: str) -> tuple[str, str] | None:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def api_key_create(*, actor: Actor, name: str, role: str, source_name: str = "", channel: str = "") -> CreatedKey:
    """Create a key; for role `source` bind it to the named source, creating that source."""
    name = name.strip()
    if not name:
        raise ApiKeyError("a key needs a name")
    if role not in {value for value, _ in ApiKey._meta.get_field("role").choices}:
        raise ApiKeyError(f"unknown role '{role}'")
    if role == Role.SOURCE and not source_name:
        raise ApiKeyError("a key of role 'source' needs --source NAME")
    if role != Role.SOURCE and source_name:
        raise ApiKeyError("only keys of role 'source' are bound to a source")
    if channel and channel not in Channel.values:
        raise ApiKeyError(f"unknown channel '{channel}'; one of: {', '.join(Channel.values)}")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with transaction.atomic():
        source = None
        if source_name:
            source, _ = Source.objects.get_or_create(name=source_name, defaults={"channel": channel or Channel.OTHER})
        api_key = ApiKey.objects.create(
            name=name, prefix=prefix, key_hash=hash_secret(secret), role=role, source=source
        )
        audit_record(
            actor=actor,
            action=AuditAction.APIKEY_CREATE,
            object_type="api_key",
            object_id=prefix,
            details={"role": role, "source": source.name if source else ""},
        )
    return CreatedKey(api_key=api_key, plaintext=f"{KEY_PREFIX}_{prefix}_{secret}")


def api_key_revoke(*, actor: Actor, prefix: str) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if api_key is None:
            raise ApiKeyError(f"no key with prefix '{prefix}'")
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action=AuditAction.APIKEY_REVOKE, object_type="api_key", object_id=prefix)
    return api_key


def api_key_check(raw: str) -> ApiKey | None:
    """Return the active key matching `raw`, or None. Constant-time comparison of hashes."""
    parts = split_key(raw)
    if parts is None:
        return None
    prefix, secret = parts
    api_key = ApiKey.objects.select_related("source").filter(prefix=prefix).first()
    candidate = hash_secret(secret)
    if api_key is None:
        hmac.compare_digest(candidate, candidate)  # same work whether or not the prefix exists
        return None
    if not hmac.compare_digest(api_key.key_hash, candidate) or api_key.revoked_at is not None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
