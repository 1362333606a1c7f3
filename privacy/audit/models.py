"""The audit entry: one link in a SHA-256 hash chain."""

from __future__ import annotations

from django.db import models

from privacy.audit.actions import Outcome


class AuditEntry(models.Model):
    """Append-only. `hash` = SHA-256(prev_hash || canonical(entry)); see privacy.audit.chain.

    Holds no personal data: the subject is the pseudonymous profile id, the client is a keyed
    hash, `details` carries counts, codes and ids only.
    """

    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=128, db_index=True)
    role = models.CharField(max_length=16, blank=True, default="")
    # Validated against AuditAction by the writer; no `choices=` here, so that adding an action
    # to the vocabulary never needs a schema migration.
    action = models.CharField(max_length=32, db_index=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OK)
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)
    purpose = models.CharField(max_length=64, blank=True, default="")
    legal_basis = models.CharField(max_length=32, blank=True, default="")
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    client_hash = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        app_label = "privacy"
        ordering = ["seq"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.outcome}"


class AuditCheckpoint(models.Model):
    """A signed statement "the chain's entry `seq` has hash `hash`" (privacy.audit.checkpoints).

    Anchors the chain: rewriting anything up to `seq` (even with every hash recomputed) or cutting
    entries off the tail no longer matches a signature made with a key the database does not hold.
    """

    seq = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, hex.")
    key_id = models.CharField(max_length=16, help_text="First 16 hex of SHA-256 over the raw public key.")
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, hex.")

    class Meta:
        app_label = "privacy"
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq}"
