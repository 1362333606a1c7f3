"""Per-subject data keys: create, unwrap (with a bounded per-request cache) and shred.

The cache holds unwrapped keys for the current request or task only (the middleware and the
Celery `task_postrun` hook call `clear_data_key_cache`), bounded by CDP_DATA_KEY_CACHE_SIZE.

Why keys created in an open transaction are not cached until it commits: if the transaction
(or a savepoint around one message of a batch) rolls back, the key row vanishes with it. A key
still held in the cache would go on sealing data under a key that exists nowhere, and that data
could never be opened again. So a key minted inside `transaction.atomic` is only cached by an
`on_commit` callback; until then every use reads the row again (one query, one unwrap).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cdp.bulk import copy_insert
from privacy.crypto.errors import KeyShreddedError
from privacy.crypto.keyring import get_kms
from privacy.crypto.models import SubjectKey

_local = threading.local()


def _cache() -> OrderedDict[uuid.UUID, tuple[int, bytes]]:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    return cache


def _pending() -> set[uuid.UUID]:
    """Subjects whose key row was created by this thread in a transaction not yet committed."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = set()
    return pending


def clear_data_key_cache() -> None:
    """Drop every unwrapped data key held by this thread (end of a request or task)."""
    _cache().clear()
    _pending().clear()


def _remember(subject_id: uuid.UUID, value: tuple[int, bytes]) -> None:
    cache = _cache()
    cache[subject_id] = value
    cache.move_to_end(subject_id)
    while len(cache) > settings.CDP_DATA_KEY_CACHE_SIZE:
        cache.popitem(last=False)


def _as_uuid(subject_id: uuid.UUID | str) -> uuid.UUID:
    return subject_id if isinstance(subject_id, uuid.UUID) else uuid.UUID(str(subject_id))


def wrap_aad(subject_id: uuid.UUID, dek_version: int) -> bytes:
    """Associated data for wrapping: a wrapped key moved to another subject fails to open."""
    return b"cdp-dek|" + subject_id.bytes + dek_version.to_bytes(2, "big")


def data_key(subject_id: uuid.UUID | str, *, create: bool) -> tuple[int, bytes] | None:
    """Return (dek_version, key) for the subject, creating the key when `create` is true.

    Returns None when the subject has no key and `create` is false. Raises KeyShreddedError
    when the key was destroyed: erased subjects never get a fresh key silently.
    """
    subject_id = _as_uuid(subject_id)
    cache = _cache()
    hit = cache.get(subject_id)
    if hit is not None:
        cache.move_to_end(subject_id)
        return hit
    row = SubjectKey.objects.filter(subject_id=subject_id).first()
    key: bytes | None = None
    created = False
    if row is None:
        if not create:
            return None
        row, key = _create(subject_id)
        created = key is not None
    if row.shredded_at is not None or not row.wrapped:
        raise KeyShreddedError("the subject's data key was destroyed")
    if key is None:
        aad = wrap_aad(subject_id, row.dek_version)
        key = get_kms().unwrap(bytes(row.wrapped), version=row.kek_version, aad=aad)
    value = (row.dek_version, key)
    pending = _pending()
    if created and transaction.get_connection().in_atomic_block:
        pending.add(subject_id)
        transaction.on_commit(lambda: _committed(subject_id, value))
    elif subject_id not in pending:
        _remember(subject_id, value)
    return value


def data_keys_create_fresh(subject_ids: set[uuid.UUID]) -> None:
    """Create data keys for brand-new subjects in one INSERT, and cache them at once.

    For batch paths (ingestion) that mint many subjects in one transaction. Precondition: every
    id is a fresh subject (e.g. a uuid4 profile created in this same transaction), so every value
    ever sealed under these keys is written in this transaction too. Caching before commit is then
    safe: if the transaction rolls back, the key rows, the subjects and all data sealed under them
    vanish together, and nothing will ask for those ids again.
    """
    if not subject_ids:
        return
    kms = get_kms()
    rows, keys = [], []
    for subject in subject_ids:
        key = os.urandom(32)
        version, wrapped = kms.wrap(key, aad=wrap_aad(subject, 1))
        rows.append(SubjectKey(subject_id=subject, dek_version=1, kek_version=version, wrapped=wrapped))
        keys.append((subject, key))
    copy_insert(SubjectKey, rows)
    for subject, key in keys:
        _remember(subject, (1, key))


def _committed(subject_id: uuid.UUID, value: tuple[int, bytes]) -> None:
    pending = _pending()
    if subject_id in pending:  # not if the key was shredded (or the cache cleared) meanwhile
        pending.discard(subject_id)
        _remember(subject_id, value)


def _create(subject_id: uuid.UUID) -> tuple[SubjectKey, bytes | None]:
    """Mint and store a wrapped key; returns the row and the plaintext key (None if we lost a race)."""
    key = os.urandom(32)
    version, wrapped = get_kms().wrap(key, aad=wrap_aad(subject_id, 1))
    try:
        with transaction.atomic():
            row = SubjectKey.objects.create(subject_id=subject_id, dek_version=1, kek_version=version, wrapped=wrapped)
            return row, key
    except IntegrityError:
        # Another worker created it first; use theirs so both seal under the same key.
        return SubjectKey.objects.get(subject_id=subject_id), None


def shred_subject(*, subject_id: uuid.UUID | str) -> bool:
    """Destroy the subject's data key. Returns True when a live key was destroyed.

    Idempotent. A subject that never had a key gets a shredded marker row, so a later seal
    cannot mint a fresh key for an erased person. Other processes may still hold the key in
    their per-request cache until that request or task ends. The audited entry point is
    `privacy.crypto.services.subject_shred`; backups: docs/security.md.
    """
    subject_id = _as_uuid(subject_id)
    _cache().pop(subject_id, None)
    _pending().discard(subject_id)  # a key minted earlier in this transaction must not be cached on commit
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
