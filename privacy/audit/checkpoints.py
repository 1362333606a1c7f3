"""Signed checkpoints of the audit chain (Ed25519).

Why: the hash chain alone proves order and integrity only against someone who cannot rewrite it.
Whoever can write the table can recompute every hash after an edit, or cut entries off the tail.
A checkpoint is a signature over (seq, hash, time) made with `settings.KEYS.audit_signing_key`,
which the database does not hold: a rewrite of anything up to a checkpoint, or a cut tail below
one, no longer matches. Beat signs the head every few minutes (CELERY_BEAT_SCHEDULE), so the
window in which a database-level attacker could rewrite unnoticed is bounded by that interval.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor
from privacy.audit.actions import AuditAction
from privacy.audit.chain import checkpoint_message, format_time, key_id
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.writer import audit_record, lock_chain


def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(settings.KEYS.audit_signing_key)


def public_key_hex() -> str:
    """The raw Ed25519 public key (hex) that verifies checkpoints; safe to publish."""
    return _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def public_key_pem() -> str:
    return _private_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def trusted_key_ids() -> set[str]:
    """Keys whose checkpoints verification accepts: the current one, plus retired public keys
    listed (hex, comma-separated) in CDP_AUDIT_TRUSTED_PUBLIC_KEYS after a key rotation."""
    extra = [k.strip() for k in getattr(settings, "CDP_AUDIT_TRUSTED_PUBLIC_KEYS", []) if k.strip()]
    return {key_id(public_key_hex()), *(key_id(k) for k in extra)}


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    """True when the stored signature verifies under the stored public key (trust is checked apart)."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key))
        message = checkpoint_message(checkpoint.seq, checkpoint.hash, format_time(checkpoint.signed_at))
        public.verify(bytes.fromhex(checkpoint.signature), message)
    except (InvalidSignature, ValueError):
        return False
    return key_id(checkpoint.public_key) == checkpoint.key_id


def checkpoint_create(*, actor: Actor) -> AuditCheckpoint | None:
    """Sign the chain's current head and store the checkpoint; idempotent.

    Returns None when there is nothing new to sign: an empty chain, or a head that is the last
    checkpoint itself or only that checkpoint's own `audit.checkpoint` entry (so an idle system
    does not grow the trail every interval). Takes the chain lock, so the head cannot move while
    it is being signed; the `audit.checkpoint` entry is written after, and the next checkpoint
    covers it.
    """
    with transaction.atomic():
        lock_chain()
        head = AuditEntry.objects.order_by("-seq").values("seq", "hash", "action").first()
        if head is None:
            return None
        last = AuditCheckpoint.objects.order_by("-seq").first()
        if last is not None and (
            head["seq"] == last.seq or (head["seq"] == last.seq + 1 and head["action"] == AuditAction.AUDIT_CHECKPOINT)
        ):
            return None
        signed_at = timezone.now()
        public = public_key_hex()
        signature = _private_key().sign(checkpoint_message(head["seq"], head["hash"], format_time(signed_at)))
        checkpoint = AuditCheckpoint.objects.create(
            seq=head["seq"],
            hash=head["hash"],
            signed_at=signed_at,
            signature=signature.hex(),
            key_id=key_id(public),
            public_key=public,
        )
        audit_record(
            actor=actor,
            action=AuditAction.AUDIT_CHECKPOINT,
            object_type="audit_checkpoint",
            object_id=str(checkpoint.seq),
            details={"seq": checkpoint.seq, "key_id": checkpoint.key_id},
        )
    return checkpoint


def checkpoint_latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-seq").first()
