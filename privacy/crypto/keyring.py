"""Key-encryption keys behind a small KMS interface.

`LocalKms` holds versioned KEKs from settings.KEYS (environment or the development key file)
and wraps data keys with AES-256-GCM. A cloud KMS or HSM plugs in by implementing the same two
methods (wrap, unwrap) and being returned by `get_kms()`; the rest of the code never sees a KEK.
"""

from __future__ import annotations

import os
import struct
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from privacy.crypto.errors import DecryptionError, UnknownKeyVersion


class Kms(Protocol):
    @property
    def active_version(self) -> int: ...

    def versions(self) -> list[int]: ...

    def wrap(self, plaintext: bytes, *, aad: bytes, version: int | None = None) -> tuple[int, bytes]: ...

    def unwrap(self, blob: bytes, *, version: int, aad: bytes) -> bytes: ...


class LocalKms:
    """KEKs held in process memory. Each wrap uses a fresh 96-bit nonce; the version is bound
    into the associated data so a blob cannot be replayed under another KEK version."""

    def __init__(self, keks: dict[int, bytes], active: int) -> None:
        if active not in keks:
            raise UnknownKeyVersion("active KEK version is not in the key ring")
        self._keks = dict(keks)
        self._active = active

    @property
    def active_version(self) -> int:
        return self._active

    def versions(self) -> list[int]:
        return sorted(self._keks)

    def wrap(self, plaintext: bytes, *, aad: bytes, version: int | None = None) -> tuple[int, bytes]:
        version = self._active if version is None else version
        key = self._key(version)
        nonce = os.urandom(12)
        return version, nonce + AESGCM(key).encrypt(nonce, plaintext, aad + struct.pack(">I", version))

    def unwrap(self, blob: bytes, *, version: int, aad: bytes) -> bytes:
        key = self._key(version)
        if len(blob) < 12 + 16:
            raise DecryptionError("wrapped key is truncated")
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], aad + struct.pack(">I", version))
        except InvalidTag as exc:
            raise DecryptionError("wrapped key does not open under its KEK") from exc

    def _key(self, version: int) -> bytes:
        try:
            return self._keks[version]
        except KeyError:
            raise UnknownKeyVersion(f"KEK version {version} is not in the key ring (retired?)") from None


@lru_cache(maxsize=1)
def get_kms() -> Kms:
    keys = settings.KEYS
    return LocalKms(keys.keks, keys.kek_active)


def reset_kms() -> None:
    """Forget the cached KMS (after the key ring changed, e.g. in tests or rotate_kek)."""
    get_kms.cache_clear()
