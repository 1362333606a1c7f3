"""Canonical forms of identifiers, and the junk blocklist.

Equal people must produce equal blind indexes, so every identifier is canonicalised before it
is hashed: e-mail trimmed and lower-cased (and syntax-checked), phone numbers to E.164 with a
default region (settings.CDP_DEFAULT_PHONE_REGION, CN unless set), other ids trimmed. Junk
values that tracking code emits when it has no id ("null", "undefined", "0", all-same digits)
would glue strangers into one profile, so they are refused with a reason.

Errors carry a code and a reason that never include the value itself (it is personal data).
"""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings

from identity.registry import identifier_type

DEFAULT_JUNK = ("null", "undefined", "none", "nil", "nan", "0", "-1", "anonymous", "unknown", "test", "n/a", "")
_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})+$")
_SAME_CHAR = re.compile(r"^(.)\1+$")
MAX_ID_LENGTH = 256


class NormalizationError(ValueError):
    """An identifier that cannot be used; `code` is machine-readable, the message is safe to log."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_junk_cache: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())


def junk_values() -> frozenset[str]:
    """The configured blocklist, lower-cased; rebuilt only when the setting changes."""
    global _junk_cache
    configured = tuple(getattr(settings, "CDP_JUNK_IDENTIFIERS", DEFAULT_JUNK))
    if configured != _junk_cache[0] or not _junk_cache[1]:
        _junk_cache = (configured, frozenset(v.lower() for v in configured))
    return _junk_cache[1]


def _check_junk(id_type: str, value: str) -> None:
    lowered = value.lower()
    if lowered in junk_values():
        raise NormalizationError("junk_identifier", f"{id_type} is a placeholder value on the junk blocklist")
    digits = re.sub(r"\D", "", lowered)
    if len(lowered) >= 3 and _SAME_CHAR.match(lowered):
        raise NormalizationError("junk_identifier", f"{id_type} repeats a single character")
    if digits and len(digits) >= 5 and _SAME_CHAR.match(digits) and not re.search(r"[a-z]", lowered.split("@")[0]):
        raise NormalizationError("junk_identifier", f"{id_type} is all the same digit")


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email:
        raise NormalizationError("invalid_email", "email is not a valid address")
    local = email.split("@", 1)[0]
    if local in junk_values():
        raise NormalizationError("junk_identifier", "email uses a placeholder local part")
    return email


def normalize_phone(value: str, *, region: str | None = None) -> str:
    region = region or settings.CDP_DEFAULT_PHONE_REGION
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise NormalizationError("invalid_phone", "phone cannot be parsed") from exc
    if not phonenumbers.is_valid_number(number):
        raise NormalizationError("invalid_phone", "phone is not a valid number for its region")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    _check_junk("phone", e164.lstrip("+")[len(str(number.country_code)) :])
    return e164


def normalize_identifier(id_type: str, value: object) -> str:
    """Return the canonical form of `value` as identifier `id_type`, or raise NormalizationError."""
    spec = identifier_type(id_type)
    if spec is None:
        raise NormalizationError("unknown_identifier_type", f"identifier type '{id_type[:40]}' is not registered")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise NormalizationError("invalid_identifier", f"{id_type} must be a string")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise NormalizationError("invalid_identifier", f"{id_type} is longer than {MAX_ID_LENGTH} characters")
    _check_junk(id_type, text)
    if spec.normaliser == "email":
        return normalize_email(text)
    if spec.normaliser == "phone":
        return normalize_phone(text)
    return text
