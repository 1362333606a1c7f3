"""The audit writer links entries into one chain, in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from cdp.actor import Actor
from privacy.audit import AuditAction, audit_record
from privacy.audit.chain import GENESIS_HASH, entry_hash, exported_fields
from privacy.audit.models import AuditEntry
from privacy.audit.writer import AuditDetailsError


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
