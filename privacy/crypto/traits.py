"""The service API for encrypted JSON: profile traits and personal event properties.

The rest of the code stores personal data through these helpers and never sees a key:

    profile.vault = traits_seal(profile_id=profile.id, traits={"name": "王小明", ...})
    traits = traits_open(profile_id=profile.id, blob=profile.vault)          # -> dict
    profile.vault = traits_update(profile_id=profile.id, blob=profile.vault, changes={...})
    event.sealed_properties = properties_seal(profile_id=profile.id, properties={...})

The storage contract (shared by every app): a profile's personal traits are ONE sealed dict in
Profile.vault under field "traits"; personal event properties are one sealed dict in
Event.sealed_properties under field "properties", sealed for the profile the event belongs to.
Dates and datetimes are stored as ISO strings. No cdp model is imported here: the helpers take
plain ids and blobs, so privacy.crypto stays below the domain apps.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from privacy.crypto.errors import DecryptionError
from privacy.crypto.vault import open_sealed, seal

TRAITS_FIELD = "traits"
PROPERTIES_FIELD = "properties"

Blob = bytes | memoryview | None


def _plain(value: Any) -> Any:
    """Dates as ISO strings (the storage contract); containers walked; the rest unchanged."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError("trait and property keys must be strings")
    return key


def _seal_dict(*, profile_id: uuid.UUID | str, field: str, values: Mapping[str, Any]) -> bytes:
    if not isinstance(values, Mapping):
        raise TypeError(f"{field} must be a mapping of names to values")
    return seal(subject_id=profile_id, field=field, value=_plain(values))


def _open_dict(*, profile_id: uuid.UUID | str, field: str, blob: Blob) -> dict[str, Any]:
    if blob is None or len(blob) == 0:
        return {}
    value = open_sealed(subject_id=profile_id, field=field, blob=blob)
    if not isinstance(value, dict):
        raise DecryptionError(f"sealed {field} is not a JSON object")
    return value


def traits_seal(*, profile_id: uuid.UUID | str, traits: Mapping[str, Any]) -> bytes:
    """Seal a profile's personal traits (the whole dict) for Profile.vault."""
    return _seal_dict(profile_id=profile_id, field=TRAITS_FIELD, values=traits)


def traits_open(*, profile_id: uuid.UUID | str, blob: Blob) -> dict[str, Any]:
    """Open Profile.vault; an empty vault is {}. Raises KeyShreddedError for an erased profile."""
    return _open_dict(profile_id=profile_id, field=TRAITS_FIELD, blob=blob)


def traits_update(
    *,
    profile_id: uuid.UUID | str,
    blob: Blob,
    changes: Mapping[str, Any],
    remove: Iterable[str] = (),
) -> bytes:
    """Open the vault, apply `changes` and drop `remove`, and seal it again (fresh nonce)."""
    traits = traits_open(profile_id=profile_id, blob=blob)
    traits.update(_plain(dict(changes)))
    for key in remove:
        traits.pop(key, None)
    return traits_seal(profile_id=profile_id, traits=traits)


def properties_seal(*, profile_id: uuid.UUID | str, properties: Mapping[str, Any]) -> bytes:
    """Seal an event's personal properties for Event.sealed_properties."""
    return _seal_dict(profile_id=profile_id, field=PROPERTIES_FIELD, values=properties)


def properties_open(*, profile_id: uuid.UUID | str, blob: Blob) -> dict[str, Any]:
    """Open Event.sealed_properties; empty is {}."""
    return _open_dict(profile_id=profile_id, field=PROPERTIES_FIELD, blob=blob)
