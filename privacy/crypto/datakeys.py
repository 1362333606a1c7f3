"""Per-subject data keys: create, unwrap (with a bounded per-request cache) and shred."""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from privacy.crypto.errors import KeyShreddedError
from privacy.crypto.keyring import get_kms
from privacy.crypto.models import SubjectKey

_local = threading.local()


def _cache() -> OrderedDict[uuid.UUID, tuple[int, bytes]]:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    return cache


def clear_data_key_cache() -> None:
    """Drop every unwrapped data key held by this thread (end of a request or task)."""
    _cache().clear()


def _remember(subject_id: uuid.UUID, value: tuple[int, bytes]) -> None:
    cache = _cache()
    cache[subject_id] = value
    cache.move_to_end(subject_id)
    while len(cache) > settings.CDP_DATA_KEY_CACHE_SIZE:
        cache.popitem(last=False)


def wrap_aad(subject_id: uuid.UUID, dek_version: int) -> bytes:
    """Associated data for wrapping: a wrapped key moved to another subject fails to open."""
    return b"cdp-dek|" + subject_id.bytes + dek_version.to_bytes(2, "big")


def data_key(subject_id: uuid.UUID | str, *, create: bool) -> tuple[int, bytes] | None:
    """Return (dek_version, key) for the subject, creating the key when `create` is true.

    Returns None when the subject has no key and `create` is false. Raises KeyShreddedError
    when the key was destroyed: erased subjects never get a fresh key silently.
    """
    subject_id = uuid.UUID(str(subject_id))
    cache = _cache()
    if subject_id in cache:
        cache.move_to_end(subject_id)
        return cache[subject_id]
    row = SubjectKey.objects.filter(subject_id=subject_id).first()
    if row is None:
        if not create:
            return None
        row = _create(subject_id)
    if row.shredded_at is not None or not row.wrapped:
        raise KeyShreddedError("the subject's data key was destroyed")
    key = get_kms().unwrap(bytes(row.wrapped), version=row.kek_version, aad=wrap_aad(subject_id, row.dek_version))
    value = (row.dek_version, key)
    _remember(subject_id, value)
    return value


def _create(subject_id: uuid.UUID) -> SubjectKey:
    key = os.urandom(32)
    version, wrapped = get_kms().wrap(key, aad=wrap_aad(subject_id, 1))
    try:
        with transaction.atomic():
            return SubjectKey.objects.create(subject_id=subject_id, dek_version=1, kek_version=version, wrapped=wrapped)
    except IntegrityError:
        # Another worker created it first; use theirs so both seal under the same key.
        return SubjectKey.objects.get(subject_id=subject_id)


def shred_subject(*, subject_id: uuid.UUID | str) -> bool:
    """Destroy the subject's data key. Returns True when a live key was destroyed.

    Idempotent. A subject that never had a key gets a shredded marker row, so a later seal
    cannot mint a fresh key for an erased person. How backups are covered: docs/security.md.
    """
    subject_id = uuid.UUID(str(subject_id))
    _cache().pop(subject_id, None)
    updated = SubjectKey.objects.filter(subject_id=subject_id, shredded_at__isnull=True).update(
        wrapped=None, shredded_at=timezone.now()
    )
    if not updated and not SubjectKey.objects.filter(subject_id=subject_id).exists():
        # Record the shredding anyway so that a later seal cannot mint a fresh key.
        SubjectKey.objects.get_or_create(
            subject_id=subject_id,
            defaults={"kek_version": get_kms().active_version, "wrapped": None, "shredded_at": timezone.now()},
        )
    return bool(updated)
