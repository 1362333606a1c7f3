"""Sealing personal values with AES-256-GCM under the subject's data key.

Ciphertext format (version 1), all integers big-endian:

    0      1      2..3          4..15   16..
    fmt=1  alg=1  dek_version   nonce   ciphertext || 16-byte GCM tag

The associated data is the 4-byte header, the subject id and the field name, so a ciphertext
moved to another field or subject, or given another header, fails to open. Values are strict
JSON (UTF-8), so every JSON type round-trips, Chinese text included; tuples come back as lists,
and NaN, infinities and non-JSON objects are refused at sealing time (ValueError / TypeError).
A new algorithm gets a new `alg` (or `fmt`) byte; blobs of the old one keep opening.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.crypto.datakeys import _as_uuid, data_key
from privacy.crypto.errors import DecryptionError, UnknownKeyVersion

FORMAT_V1 = 1
ALG_AES256_GCM = 1
_HEADER = struct.Struct(">BBH")
_NONCE = 12
_TAG = 16


def _aad(header: bytes, subject_id: uuid.UUID, field: str) -> bytes:
    return header + b"|" + subject_id.bytes + b"|" + field.encode("utf-8")


def seal(*, subject_id: uuid.UUID | str, field: str, value: Any) -> bytes:
    """Encrypt one JSON-serialisable value for `subject_id` and `field`."""
    if not isinstance(field, str) or not field:
        raise ValueError("field name is required")
    subject = _as_uuid(subject_id)
    # Serialise first: a value that is not JSON must not mint a data key as a side effect.
    plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    dek_version, key = data_key(subject, create=True)  # type: ignore[misc]
    header = _HEADER.pack(FORMAT_V1, ALG_AES256_GCM, dek_version)
    nonce = os.urandom(_NONCE)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(header, subject, field))


def open_sealed(*, subject_id: uuid.UUID | str, field: str, blob: bytes | memoryview) -> Any:
    """Decrypt a value sealed by `seal` for the same subject and field.

    Raises DecryptionError for anything tampered, truncated, foreign or moved; KeyShreddedError
    when the subject was erased.
    """
    if blob is None:
        raise DecryptionError("no ciphertext to open")
    blob = bytes(blob)
    if len(blob) < _HEADER.size + _NONCE + _TAG:
        raise DecryptionError("ciphertext is truncated")
    fmt, alg, dek_version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_V1 or alg != ALG_AES256_GCM:
        raise DecryptionError(f"unknown ciphertext format {fmt}/{alg}")
    subject = _as_uuid(subject_id)
    found = data_key(subject, create=False)
    if found is None:
        raise DecryptionError("no data key for this subject: the ciphertext is foreign")
    key_version, key = found
    if key_version != dek_version:
        raise UnknownKeyVersion(f"ciphertext names data key version {dek_version}, subject has {key_version}")
    header = blob[: _HEADER.size]
    nonce = blob[_HEADER.size : _HEADER.size + _NONCE]
    try:
        plaintext = AESGCM(key).decrypt(nonce, blob[_HEADER.size + _NONCE :], _aad(header, subject, field))
    except InvalidTag as exc:
        raise DecryptionError("ciphertext does not open: tampered, moved or foreign") from exc
    return json.loads(plaintext.decode("utf-8"))
