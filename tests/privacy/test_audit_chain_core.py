"""The audit writer links entries into one chain, in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdp.actor import Actor
from privacy.audit import AuditAction, audit_record
from privacy.audit.chain import GENESIS_HASH, entry_hash, exported_fields
from privacy.audit.models import AuditEntry
from privacy.audit.writer import AuditDetailsError, AuditFieldError


@pytest.mark.django_db
def test_entries_form_a_chain():
    actor = Actor.system("tests")
    entries = [audit_record(actor=actor, action=AuditAction.SYSTEM, details={"n": i}) for i in range(5)]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    prev = GENESIS_HASH
    for entry in AuditEntry.objects.order_by("seq"):
        assert entry.prev_hash == prev
        assert entry.hash == entry_hash(prev, exported_fields(entry))
        prev = entry.hash


@pytest.mark.django_db(transaction=True)
def test_entry_rolls_back_with_the_change():
    actor = Actor.system("tests")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=actor, action=AuditAction.SYSTEM)
        raise RuntimeError("the change failed")
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"action": "profile.peek"}, ValueError),
        ({"action": AuditAction.SYSTEM, "outcome": "maybe"}, ValueError),
        ({"action": AuditAction.SYSTEM, "details": {"blob": b"bytes"}}, AuditDetailsError),
        ({"action": AuditAction.SYSTEM, "details": {"big": "x" * 5000}}, AuditDetailsError),
    ],
)
def test_bad_entries_are_refused(kwargs, error):
    with pytest.raises(error):
        audit_record(actor=Actor.system("tests"), **kwargs)
    assert AuditEntry.objects.count() == 0


class _Opaque:
    pass


@pytest.mark.django_db
@pytest.mark.parametrize(
    "details",
    [
        {"when": __import__("datetime").datetime(2026, 1, 1)},
        {"amount": __import__("decimal").Decimal("1.5")},
        {"ids": {1, 2}},
        {"obj": _Opaque()},
        {"nested": {"deeper": [b"x"]}},
        {1: "non-string key"},
    ],
    ids=["datetime", "decimal", "set", "object", "nested-bytes", "int-key"],
)
def test_writer_refuses_non_scalar_details(details):
    with pytest.raises(AuditDetailsError):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details=details)
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "details",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": 1e16}, {"x": -1e20}],
    ids=["nan", "inf", "1e16", "-1e20"],
)
def test_writer_refuses_floats_that_jsonb_would_change(details):
    """jsonb prints 1e16 as 10000000000000000 (an int when read back) and rejects NaN: either
    would make a stored entry stop matching its hash, so the writer refuses them up front."""
    with pytest.raises(AuditDetailsError):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details=details)


@pytest.mark.django_db
def test_floats_and_unicode_survive_the_database_round_trip():
    details = {"epsilon": 0.1, "tiny": 1e-7, "big": 123456789012.5, "whole": 5.0, "code": "状态_ok", "n": 2**40}
    entry = audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details=details)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.hash == entry_hash(stored.prev_hash, exported_fields(stored))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs",
    [
        {"object_id": "x" * 65},
        {"object_type": "t" * 33},
        {"legal_basis": "b" * 33},
        {"purpose": "p" * 65},
        {"object_id": "alice@example.com"},
        {"details": {"note": "write to bob.smith@example.cn"}},
        {"details": {"alice@example.com": 1}},
        {"object_id": "nul\x00byte"},
    ],
    ids=[
        "object_id-long",
        "object_type-long",
        "legal_basis-long",
        "purpose-long",
        "email-field",
        "email-detail",
        "email-key",
        "nul",
    ],
)
def test_writer_refuses_overlong_or_personal_looking_fields(kwargs):
    """Same refusal on SQLite (which ignores column widths) as on PostgreSQL."""
    with pytest.raises(ValueError):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, **kwargs)
    assert AuditEntry.objects.count() == 0


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_details = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None)
@given(details=_details)
@example(details={"negative_zero": -0.0, "nested": [{"z": -0.0}], "tiny": 5e-324, "big": 999999999999999.9})
def test_any_accepted_details_still_hash_the_same_after_the_database(details):
    """Whatever the writer accepts reads back (through jsonb on PostgreSQL) to the same hash."""
    try:
        entry = audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details=details)
    except (AuditDetailsError, AuditFieldError):
        return
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.hash == entry_hash(stored.prev_hash, exported_fields(stored)), stored.details


@pytest.mark.django_db
def test_many_entries_in_one_insert_continue_the_chain_in_order():
    from privacy.audit import AuditItem, audit_record_many
    from privacy.audit.verify import audit_chain_check

    actor = Actor.system("tests")
    audit_record(actor=actor, action=AuditAction.SYSTEM, details={"n": 0})
    written = audit_record_many(
        actor=actor, items=[AuditItem(action=AuditAction.SYSTEM, details={"n": i}) for i in range(1, 4)]
    )
    audit_record(actor=actor, action=AuditAction.SYSTEM, details={"n": 4})
    assert [e.seq for e in written] == [2, 3, 4]
    stored = list(AuditEntry.objects.order_by("seq").values_list("seq", "details"))
    assert stored == [(i + 1, {"n": i}) for i in range(5)]
    assert audit_chain_check().valid


@pytest.mark.django_db
def test_one_bad_item_writes_none_of_the_batch():
    from privacy.audit import AuditItem, audit_record_many

    items = [AuditItem(action=AuditAction.SYSTEM), AuditItem(action="profile.peek"), AuditItem(AuditAction.SYSTEM)]
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record_many(actor=Actor.system("tests"), items=items)
    assert not AuditEntry.objects.exists()
