"""Blind indexes and keyed hashes: lookup without storing plaintext.

A blind index is HMAC-SHA256 under the pepper key over "cdp-bi|v1|<type>|<value>", so equal
normalised identifiers of one type match while the same string as another type does not, and
without the pepper nothing can be tested against the index offline. The value must already be
normalised (identity.normalize).

Why an empty value is refused: every empty e-mail would share one index, and identity
resolution would glue unrelated people into one profile.

Pepper rotation (docs/security.md): the "v1" in the message is the index version. A new pepper
gets "v2"; during the migration both indexes are written for new identifiers and looked up for
old ones, a backfill computes v2 from the sealed copy of each identifier, then v1 is dropped.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

BLIND_INDEX_VERSION = "v1"


def _check_label(name: str, label: str) -> None:
    if not isinstance(label, str) or not label or "|" in label:
        raise ValueError(f"{name} must be a non-empty name without '|'")


def blind_index(*, id_type: str, value: str) -> str:
    """Hex HMAC-SHA256 of a normalised identifier, separated per identifier type."""
    _check_label("id_type", id_type)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a blind index needs a non-empty identifier value")
    msg = f"cdp-bi|{BLIND_INDEX_VERSION}|{id_type}|{value}".encode()
    return hmac.new(settings.KEYS.blind_index_pepper, msg, hashlib.sha256).hexdigest()


def keyed_hash(*, domain: str, value: str) -> str:
    """Keyed hash for evidence (client address, user agent): comparable, not reversible.

    Uses a key of its own (CDP_HASH_KEY), so an evidence hash never equals a blind index.
    """
    _check_label("domain", domain)
    msg = f"cdp-kh|{domain}|{value}".encode()
    return hmac.new(settings.KEYS.hash_key, msg, hashlib.sha256).hexdigest()
