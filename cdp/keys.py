"""Key material for the platform: where it comes from and what happens when it is missing.

Why a module of its own: settings must decide at import time whether the process may start.
In production every key must come from the environment (or a KMS adapter that exports it
there); a missing key is a refusal to start, never a silent default. In development the keys
are generated once into a git-ignored JSON file so that a fresh clone runs with one command and
keeps reading the data it encrypted yesterday.

Keys (all base64 except the Django secret):
- DJANGO_SECRET_KEY: Django's signing key (sessions, CSRF, signed portal links).
- CDP_KEKS: key-encryption keys as "VERSION:BASE64,VERSION:BASE64"; CDP_KEK_ACTIVE names the
  version that wraps new data keys (default: the highest).
- CDP_BLIND_INDEX_PEPPER: HMAC key for blind indexes of identifiers.
- CDP_HASH_KEY: HMAC key for keyed hashes of evidence (IP address, user agent).
- CDP_AUDIT_SIGNING_KEY: Ed25519 private key (raw 32 bytes) that signs audit checkpoints.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

REQUIRED_ENV = (
    "DJANGO_SECRET_KEY",
    "CDP_KEKS",
    "CDP_BLIND_INDEX_PEPPER",
    "CDP_HASH_KEY",
    "CDP_AUDIT_SIGNING_KEY",
)


@dataclass(frozen=True)
class KeyMaterial:
    """Everything secret the process needs, decoded. Never logged, never repr'd."""

    secret_key: str
    keks: dict[int, bytes]
    kek_active: int
    blind_index_pepper: bytes
    hash_key: bytes
    audit_signing_key: bytes

    def __repr__(self) -> str:  # keep secrets out of tracebacks and debug pages
        return f"KeyMaterial(kek_versions={sorted(self.keks)}, kek_active={self.kek_active})"


def _b64(name: str, value: str, *, length: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64") from exc
    if len(raw) != length:
        raise ImproperlyConfigured(f"{name} must decode to {length} bytes, got {len(raw)}")
    return raw


def parse_keks(value: str) -> dict[int, bytes]:
    """Parse "1:BASE64,2:BASE64" into {1: key, 2: key}; every key is 32 bytes (AES-256)."""
    keks: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        version, sep, encoded = part.partition(":")
        if not sep or not version.isdigit() or int(version) < 1:
            raise ImproperlyConfigured("CDP_KEKS entries must look like VERSION:BASE64 with VERSION >= 1")
        keks[int(version)] = _b64(f"CDP_KEKS version {version}", encoded, length=32)
    if not keks:
        raise ImproperlyConfigured("CDP_KEKS holds no key")
    return keks


def format_keks(keks: dict[int, bytes]) -> str:
    return ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in sorted(keks.items()))


def _new_values() -> dict[str, str]:
    def rand(n: int) -> str:
        return base64.b64encode(secrets.token_bytes(n)).decode()

    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "CDP_KEKS": f"1:{rand(32)}",
        "CDP_BLIND_INDEX_PEPPER": rand(32),
        "CDP_HASH_KEY": rand(32),
        "CDP_AUDIT_SIGNING_KEY": rand(32),
    }


def dev_key_file_values(path: Path) -> dict[str, str]:
    """Read the development key file, creating it (mode 0600) with fresh keys on first run.

    A key added in a later release is generated and appended without touching existing ones,
    so upgrading never makes old data unreadable.
    """
    values: dict[str, str] = {}
    if path.exists():
        values = json.loads(path.read_text())
    missing = {k: v for k, v in _new_values().items() if k not in values}
    if missing:
        values.update(missing)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh, indent=2)
        tmp.replace(path)
    return values


def save_dev_keks(path: Path, keks: dict[int, bytes], active: int) -> None:
    """Write a new KEK set into the development key file (used by rotate_kek in development)."""
    values = dev_key_file_values(path)
    values["CDP_KEKS"] = format_keks(keks)
    values["CDP_KEK_ACTIVE"] = str(active)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh, indent=2)
    tmp.replace(path)


def load_key_material(*, production: bool, environ: dict[str, str], dev_key_file: Path) -> KeyMaterial:
    """Load keys from the environment; in development fall back to the generated key file.

    Production refuses to start when any key is missing: ImproperlyConfigured names the missing
    variables (never their values).
    """
    if production:
        missing = [name for name in REQUIRED_ENV if not environ.get(name)]
        if missing:
            raise ImproperlyConfigured(
                "CDP_ENV=production refuses to start without key material; missing: " + ", ".join(missing)
            )
        source = dict(environ)
    else:
        source = {**dev_key_file_values(dev_key_file), **{k: v for k, v in environ.items() if v}}

    keks = parse_keks(source["CDP_KEKS"])
    active_raw = source.get("CDP_KEK_ACTIVE") or str(max(keks))
    if not active_raw.isdigit() or int(active_raw) not in keks:
        raise ImproperlyConfigured("CDP_KEK_ACTIVE must name a version present in CDP_KEKS")
    secret_key = source["DJANGO_SECRET_KEY"]
    if production and len(secret_key) < 50:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters in production")
    return KeyMaterial(
        secret_key=secret_key,
        keks=keks,
        kek_active=int(active_raw),
        blind_index_pepper=_b64("CDP_BLIND_INDEX_PEPPER", source["CDP_BLIND_INDEX_PEPPER"], length=32),
        hash_key=_b64("CDP_HASH_KEY", source["CDP_HASH_KEY"], length=32),
        audit_signing_key=_b64("CDP_AUDIT_SIGNING_KEY", source["CDP_AUDIT_SIGNING_KEY"], length=32),
    )
