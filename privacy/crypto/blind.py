"""Blind indexes and keyed hashes: lookup without storing plaintext.

A blind index is HMAC-SHA256 under the pepper key over "cdp-bi|v1|<type>|<value>", so equal
normalised identifiers of one type match while the same string as another type does not, and
without the pepper nothing can be tested against the index offline. The value must already be
normalised (identity.normalize).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

BLIND_INDEX_VERSION = "v1"


def blind_index(*, id_type: str, value: str) -> str:
    if not id_type or "|" in id_type:
        raise ValueError("id_type must be a non-empty name without '|'")
    msg = f"cdp-bi|{BLIND_INDEX_VERSION}|{id_type}|{value}".encode()
    return hmac.new(settings.KEYS.blind_index_pepper, msg, hashlib.sha256).hexdigest()


def keyed_hash(*, domain: str, value: str) -> str:
    """Keyed hash for evidence (client address, user agent): comparable, not reversible."""
    msg = f"cdp-kh|{domain}|{value}".encode()
    return hmac.new(settings.KEYS.hash_key, msg, hashlib.sha256).hexdigest()
