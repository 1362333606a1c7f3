"""Verification finds every kind of tampering and names the first bad sequence number.

On PostgreSQL the tampering bypasses the append-only trigger the way only a superuser can
(tests.conftest.append_only_bypassed); on SQLite there is no trigger to bypass.
"""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import CommandError, call_command
from django.db import connection

from cdp.actor import Actor, Role
from privacy.audit import AuditAction, audit_record
from privacy.audit.chain import checkpoint_message, entry_hash, exported_fields, format_time, key_id
from privacy.audit.checkpoints import checkpoint_create, checkpoint_signature_valid
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.verify import audit_chain_check, audit_verify
from tests.conftest import append_only_bypassed

pytestmark = pytest.mark.django_db
N = 10


def _sql(sql: str, params=()) -> None:
    with append_only_bypassed(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rehash(seq: int, **changes) -> str:
    """Rewrite one entry with a recomputed hash (what a forger with database access does)."""
    entry = AuditEntry.objects.get(seq=seq)
    for name, value in changes.items():
        setattr(entry, name, value)
    entry.hash = entry_hash(entry.prev_hash, exported_fields(entry))
    with append_only_bypassed():
        AuditEntry.objects.filter(pk=entry.pk).update(hash=entry.hash, **changes)
    return entry.hash


@pytest.fixture
def chain():
    actor = Actor.system("tests")
    for i in range(N):
        audit_record(
            actor=actor,
            action=AuditAction.PROFILE_READ if i % 2 else AuditAction.SYSTEM,
            subject_id=uuid.uuid4() if i % 3 == 0 else None,
            purpose="support" if i % 2 else "",
            details={"i": i, "ratio": i / 4, "codes": ["a", "b"]},
        )
    assert audit_chain_check().valid


def test_intact_chain_verifies_and_the_run_is_audited(chain):
    checkpoint_create(actor=Actor.system("tests"))
    result = audit_verify(actor=Actor.system("tests"))
    assert result.valid and result.fault == "" and result.first_bad_seq is None
    assert result.checked == N + 1 and result.checkpoints_checked == 1
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry.action == "audit.verify" and entry.outcome == "ok"
    assert entry.details["valid"] is True and entry.details["checked"] == N + 1


def test_empty_chain_is_valid(db):
    assert audit_chain_check().valid


def _modify(chain):
    _sql("UPDATE privacy_auditentry SET object_id = 'forged' WHERE seq = 5")


def _modify_details(chain):
    entry = AuditEntry.objects.get(seq=4)
    with append_only_bypassed():
        AuditEntry.objects.filter(pk=entry.pk).update(details={**entry.details, "i": 99})


def _delete(chain):
    _sql("DELETE FROM privacy_auditentry WHERE seq = 5")


def _delete_first(chain):
    _sql("DELETE FROM privacy_auditentry WHERE seq = 1")


def _insert(chain):
    """Slip a forged entry in after seq 5 (hash recomputed) and renumber the ones after it."""
    _sql("UPDATE privacy_auditentry SET seq = -seq WHERE seq > 5")
    _sql("UPDATE privacy_auditentry SET seq = 1 - seq WHERE seq < 0")
    prev = AuditEntry.objects.get(seq=5)
    forged = AuditEntry(
        seq=6,
        occurred_at=prev.occurred_at,
        actor_kind="system",
        actor_id="task:forger",
        role="system",
        action="system",
        outcome="ok",
        details={},
        prev_hash=prev.hash,
    )
    forged.hash = entry_hash(prev.hash, exported_fields(forged))
    forged.save(force_insert=True)


def _replace(chain):
    _rehash(5, object_id="forged")


def _swap(chain):
    _sql("UPDATE privacy_auditentry SET seq = -1 WHERE seq = 5")
    _sql("UPDATE privacy_auditentry SET seq = 5 WHERE seq = 6")
    _sql("UPDATE privacy_auditentry SET seq = 6 WHERE seq = -1")


@pytest.mark.parametrize(
    ("tamper", "fault", "seq"),
    [
        (_modify, "modified", 5),
        (_modify_details, "modified", 4),
        (_delete, "deleted", 5),
        (_delete_first, "deleted", 1),
        (_insert, "inserted", 6),
        (_replace, "replaced", 5),
        (_swap, "reordered", 5),
    ],
    ids=["edit-field", "edit-details", "delete", "delete-first", "insert-forged", "replace-forged", "swap"],
)
def test_each_tamper_case_is_detected_with_its_first_bad_seq(chain, tamper, fault, seq):
    tamper(chain)
    result = audit_verify(actor=Actor.system("tests"))
    assert (result.valid, result.fault, result.first_bad_seq) == (False, fault, seq), result.message
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry.action == "audit.verify" and entry.outcome == "error"
    assert entry.details["fault"] == fault and entry.details["first_bad_seq"] == seq


def test_cut_tail_is_detected_by_the_checkpoint(chain):
    checkpoint = checkpoint_create(actor=Actor.system("tests"))
    assert checkpoint.seq == N
    # Cut off the last signed entry and the checkpoint's own entry after it.
    _sql("DELETE FROM privacy_auditentry WHERE seq >= %s", [N])
    result = audit_chain_check()
    assert (result.valid, result.fault, result.first_bad_seq) == (False, "truncated", N)


def test_consistent_rewrite_is_caught_by_the_checkpoint(chain):
    """A forger who recomputes every hash after the edit leaves a valid-looking chain; the
    signed checkpoint still remembers the old head."""
    first = checkpoint_create(actor=Actor.system("tests"))  # seq N, entry N+1 is its record
    for i in range(3):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details={"after": i})
    second = checkpoint_create(actor=Actor.system("tests"))
    # Rewrite entry N+2 (after the first checkpoint) and re-link everything after it.
    _rehash(N + 2, object_id="forged")
    for seq in range(N + 3, second.seq + 2):
        prev = AuditEntry.objects.get(seq=seq - 1).hash
        with append_only_bypassed():
            AuditEntry.objects.filter(seq=seq).update(prev_hash=prev)
        _rehash(seq)
    result = audit_chain_check()
    assert (result.valid, result.fault) == (False, "checkpoint_mismatch")
    assert result.first_bad_seq == first.seq + 1
    assert result.details["range"] == [first.seq + 1, second.seq]


def test_forged_checkpoint_signature_is_detected(chain):
    checkpoint = checkpoint_create(actor=Actor.system("tests"))
    assert checkpoint_signature_valid(checkpoint)
    bad = ("00" if checkpoint.signature[:2] != "00" else "11") + checkpoint.signature[2:]
    _sql("UPDATE privacy_auditcheckpoint SET signature = %s WHERE seq = %s", [bad, checkpoint.seq])
    result = audit_chain_check()
    assert (result.fault, result.first_bad_seq) == ("checkpoint_signature", checkpoint.seq)


def test_checkpoint_signed_by_a_stranger_key_is_untrusted(chain):
    """Someone with database access signs a checkpoint with their own key: it verifies under
    the key stored beside it, but that key is not one the platform trusts."""
    stranger = Ed25519PrivateKey.generate()
    public = stranger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    head = AuditEntry.objects.order_by("-seq").first()
    checkpoint = AuditCheckpoint(
        seq=head.seq, hash=head.hash, signed_at=head.occurred_at, key_id=key_id(public), public_key=public
    )
    checkpoint.signature = stranger.sign(checkpoint_message(head.seq, head.hash, format_time(head.occurred_at))).hex()
    checkpoint.save()
    result = audit_chain_check()
    assert (result.fault, result.first_bad_seq) == ("checkpoint_untrusted", head.seq)


def test_verification_streams_in_small_chunks(chain):
    """The same answer whatever the chunk size (the iterator never needs the whole table)."""
    _delete(chain)
    assert audit_chain_check(chunk_size=1).first_bad_seq == audit_chain_check(chunk_size=1000).first_bad_seq == 5


def test_command_reports_ok_and_fails_on_tampering(chain, capsys):
    call_command("audit_verify")
    assert "OK: 10 entries" in capsys.readouterr().out
    call_command("audit_verify", "--json")
    assert json.loads(capsys.readouterr().out)["valid"] is True
    _modify(chain)
    with pytest.raises(CommandError, match="modified at seq 5"):
        call_command("audit_verify")


def test_only_compliance_admin_and_system_may_verify(chain, make_actor):
    from cdp.actor import PermissionDenied

    with pytest.raises(PermissionDenied):
        audit_verify(actor=make_actor(Role.MARKETING))
    assert audit_verify(actor=make_actor(Role.COMPLIANCE)).valid
