"""Per-subject data keys, stored only wrapped by a key-encryption key (KEK)."""

from __future__ import annotations

from django.db import models


class SubjectKey(models.Model):
    """One AES-256 data key per subject (profile id), wrapped by the KEK of `kek_version`.

    `wrapped` is emptied and `shredded_at` set by crypto-shredding; the row stays so that a
    later attempt to open the subject's data fails with KeyShreddedError rather than a silent
    new key.
    """

    subject_id = models.UUIDField(primary_key=True)
    dek_version = models.PositiveSmallIntegerField(default=1)
    kek_version = models.PositiveIntegerField(db_index=True)
    wrapped = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)
    shredded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "privacy"

    def __str__(self) -> str:
        return f"SubjectKey({self.subject_id}, kek v{self.kek_version})"
