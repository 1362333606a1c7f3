"""Extension point: other apps contribute rows to access packages and their data to erasure.

Register once at import time of the contributing app (e.g. in its AppConfig.ready):

    from privacy.dsar.providers import register_provider
    register_provider("segment_memberships", export=memberships_of, erase=erase_memberships_of)

`export(subject_id) -> list[dict]` returns flat, JSON-serialisable rows (one CSV per provider in
the package); `erase(subject_id) -> int` deletes the subject's rows and returns how many. Both
must be idempotent: erasure is resumable and may call `erase` again after a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ExportFn = Callable[[uuid.UUID], list[dict[str, Any]]]
EraseFn = Callable[[uuid.UUID], int]


@dataclass(frozen=True)
class DsarProvider:
    name: str
    export: ExportFn | None
    erase: EraseFn | None


_REGISTRY: dict[str, DsarProvider] = {}


def register_provider(name: str, *, export: ExportFn | None = None, erase: EraseFn | None = None) -> None:
    """Add (or replace, by name) a provider. The name becomes the package's CSV file name."""
    if not name.replace("_", "").isalnum():
        raise ValueError("provider names are letters, digits and underscores")
    _REGISTRY[name] = DsarProvider(name=name, export=export, erase=erase)


def unregister_provider(name: str) -> None:
    _REGISTRY.pop(name, None)


def providers() -> list[DsarProvider]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
