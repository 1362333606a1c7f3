"""Verification of the audit chain and its signed checkpoints, in constant memory.

What each fault means (the first one found is reported, with the first bad sequence number):
- modified: an entry's content no longer hashes to its stored hash (a field was edited).
- deleted: a sequence number is missing (an entry was removed from the middle or the start).
- inserted: an entry links correctly to its predecessor but its successor links past it to that
  predecessor: the entry was slipped in (with a recomputed hash) and the later entries renumbered.
- replaced: an entry is self-consistent but its successor links to a different hash: the entry
  was rewritten with a recomputed hash.
- reordered: an entry links to the hash of the entry that follows it: two entries were swapped.
- checkpoint_mismatch: the chain was rewritten consistently (every hash recomputed) somewhere
  between the previous good checkpoint and this one; first_bad_seq is the start of that range.
- truncated: a checkpoint names a sequence number beyond the last entry: the tail was cut off.
- checkpoint_signature / checkpoint_untrusted: a checkpoint's signature does not verify, or was
  made with a key that is not trusted (see privacy.audit.checkpoints.trusted_key_ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from cdp.actor import Actor, Role
from privacy.audit.actions import AuditAction, Outcome
from privacy.audit.chain import GENESIS_HASH, ROW_COLUMNS, entry_hash, row_fields
from privacy.audit.checkpoints import checkpoint_signature_valid, trusted_key_ids
from privacy.audit.export import read_snapshot
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.writer import audit_record

CHUNK_SIZE = 2000
VERIFY_ROLES = (Role.COMPLIANCE, Role.ADMIN, Role.SYSTEM)


@dataclass(frozen=True)
class VerificationResult:
    valid: bool
    checked: int
    checkpoints_checked: int
    last_seq: int | None
    last_hash: str
    fault: str = ""
    first_bad_seq: int | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fault(kind: str, seq: int | None, message: str, checked: int, cps: int, **details: Any) -> VerificationResult:
    return VerificationResult(
        valid=False,
        checked=checked,
        checkpoints_checked=cps,
        last_seq=None,
        last_hash="",
        fault=kind,
        first_bad_seq=seq,
        message=message,
        details=details,
    )


def verify_rows(rows: Iterable[dict[str, Any]], checkpoints: Iterable[Any]) -> VerificationResult:
    """Check a seq-ordered stream of `values(*ROW_COLUMNS)` rows against seq-ordered checkpoints.

    Holds only the current entry, the two before it and the one after it, and one checkpoint.
    Each checkpoint needs `seq`, `hash` and `signature_ok` / `trusted` attributes or keys.
    """
    trusted = trusted_key_ids()
    cp_iter: Iterator[Any] = iter(checkpoints)
    cp = next(cp_iter, None)
    cps_checked = 0
    last_good_cp = 0
    before_prev: dict[str, Any] | None = None
    prev: dict[str, Any] | None = None
    it = iter(rows)
    cur = next(it, None)
    checked = 0
    while cur is not None:
        nxt = next(it, None)
        checked += 1
        seq = cur["seq"]
        expected_seq = prev["seq"] + 1 if prev else 1
        expected_prev = prev["hash"] if prev else GENESIS_HASH
        own_hash_ok = entry_hash(cur["prev_hash"], row_fields(cur)) == cur["hash"]
        if seq != expected_seq:
            return _fault(
                "deleted", expected_seq, f"entries {expected_seq}..{seq - 1} are missing", checked, cps_checked
            )
        if cur["prev_hash"] != expected_prev:
            if nxt is not None and nxt["hash"] == cur["prev_hash"]:
                return _fault("reordered", seq, f"entry {seq} links to the entry after it", checked, cps_checked)
            grand = before_prev["hash"] if before_prev else GENESIS_HASH
            if prev is not None and cur["prev_hash"] == grand:
                return _fault(
                    "inserted", prev["seq"], f"entry {prev['seq']} is not part of the chain", checked, cps_checked
                )
            if not own_hash_ok:
                return _fault("modified", seq, f"entry {seq} does not match its hash", checked, cps_checked)
            bad = prev["seq"] if prev else seq
            return _fault("replaced", bad, f"entry {bad} was rewritten with a new hash", checked, cps_checked)
        if not own_hash_ok:
            return _fault("modified", seq, f"entry {seq} does not match its hash", checked, cps_checked)
        while cp is not None and cp.seq <= seq:
            cps_checked += 1
            if not checkpoint_signature_valid(cp):
                return _fault(
                    "checkpoint_signature", cp.seq, f"checkpoint {cp.seq} has a bad signature", checked, cps_checked
                )
            if cp.key_id not in trusted:
                return _fault(
                    "checkpoint_untrusted",
                    cp.seq,
                    f"checkpoint {cp.seq} is signed by an untrusted key",
                    checked,
                    cps_checked,
                    key_id=cp.key_id,
                )
            if cp.seq == seq and cp.hash != cur["hash"]:
                return _fault(
                    "checkpoint_mismatch",
                    last_good_cp + 1,
                    f"entries {last_good_cp + 1}..{seq} were rewritten: checkpoint {seq} signs another hash",
                    checked,
                    cps_checked,
                    range=[last_good_cp + 1, seq],
                )
            last_good_cp = cp.seq
            cp = next(cp_iter, None)
        before_prev, prev, cur = prev, cur, nxt
    if cp is not None:
        last = prev["seq"] if prev else 0
        return _fault(
            "truncated",
            last + 1,
            f"checkpoint {cp.seq} signs entries beyond the last one ({last}): the tail was cut off",
            checked,
            cps_checked,
            checkpoint_seq=cp.seq,
        )
    return VerificationResult(
        valid=True,
        checked=checked,
        checkpoints_checked=cps_checked,
        last_seq=prev["seq"] if prev else None,
        last_hash=prev["hash"] if prev else "",
    )


def audit_chain_check(*, chunk_size: int = CHUNK_SIZE) -> VerificationResult:
    """Verify the whole stored chain (no audit entry; see audit_verify). Streams both tables.

    The checkpoint bound is read before the head, so a checkpoint signed while this runs cannot
    look like a truncated tail.
    """
    cp_bound = AuditCheckpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    head = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    rows = (
        AuditEntry.objects.filter(seq__lte=max(head, cp_bound))
        .order_by("seq")
        .values(*ROW_COLUMNS)
        .iterator(chunk_size=chunk_size)
    )
    checkpoints = AuditCheckpoint.objects.filter(seq__lte=cp_bound).order_by("seq").iterator(chunk_size=chunk_size)
    with read_snapshot():
        return verify_rows(rows, checkpoints)


def audit_verify(*, actor: Actor, chunk_size: int = CHUNK_SIZE) -> VerificationResult:
    """Verify the chain and record the result (`audit.verify`, outcome error when it is broken).

    Compliance, admin and system tasks only. The result is stored in the entry's details, which
    is where the compliance page reads "the last verification".
    """
    actor.require_role(*VERIFY_ROLES)
    result = audit_chain_check(chunk_size=chunk_size)
    audit_record(
        actor=actor,
        action=AuditAction.AUDIT_VERIFY,
        outcome=Outcome.OK if result.valid else Outcome.ERROR,
        object_type="audit_chain",
        details={
            "valid": result.valid,
            "checked": result.checked,
            "checkpoints_checked": result.checkpoints_checked,
            "last_seq": result.last_seq,
            "fault": result.fault,
            "first_bad_seq": result.first_bad_seq,
        },
    )
    return result
