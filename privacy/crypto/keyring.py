"""Key-encryption keys behind a small KMS interface.

`LocalKms` holds versioned KEKs from settings.KEYS (environment or the development key file)
and wraps data keys with AES-256-GCM. A cloud KMS or HSM plugs in by implementing the `Kms`
protocol (active_version, versions, wrap, unwrap) and naming a factory in the setting
`CDP_KMS_FACTORY` (dotted path to a callable taking the KeyMaterial and returning a Kms); the
rest of the code never sees a KEK. docs/security.md describes an AWS KMS / HSM adapter.
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils.module_loading import import_string

from privacy.crypto.errors import DecryptionError, UnknownKeyVersion


class Kms(Protocol):
    """What the rest of privacy.crypto needs from a key-encryption service.

    `wrap` encrypts a data key under the active KEK (or `version`) and returns (version, blob);
    `unwrap` must raise DecryptionError for a blob that does not open and UnknownKeyVersion for
    a version it does not hold (a retired KEK). `aad` must be bound to the blob (for a cloud
    KMS: its encryption context).
    """

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


_kms_lock = threading.Lock()
_kms_state: dict[str, Any] = {"keys": None, "kms": None}


def build_kms(keys: Any) -> Kms:
    """Build the KMS for a KeyMaterial: the CDP_KMS_FACTORY setting, or LocalKms."""
    factory_path = getattr(settings, "CDP_KMS_FACTORY", "")
    if factory_path:
        return import_string(factory_path)(keys)
    return LocalKms(keys.keks, keys.kek_active)


def get_kms() -> Kms:
    """The process's KMS, rebuilt whenever settings.KEYS is replaced (tests, rotate_kek)."""
    keys = settings.KEYS
    kms = _kms_state["kms"]
    if kms is None or _kms_state["keys"] is not keys:
        with _kms_lock:
            kms = build_kms(keys)
            _kms_state.update(keys=keys, kms=kms)
    return kms


def reset_kms() -> None:
    """Forget the cached KMS (after the key ring or CDP_KMS_FACTORY changed)."""
    with _kms_lock:
        _kms_state.update(keys=None, kms=None)
