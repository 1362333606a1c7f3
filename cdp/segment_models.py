"""Segments (issue 8): definitions, their materialised membership, and consent-gated exports.

Imported by cdp.models so that Django sees these models in the `cdp` app.
"""

from __future__ import annotations

import uuid

from django.db import models

from cdp.models import Profile


class Segment(models.Model):
    """A named rule tree (cdp.services.rules). `version` grows on every change of `definition`,
    so a membership row says which definition produced it."""

    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    definition = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    owner = models.CharField(max_length=64, help_text="actor_id of the creator (a key prefix, never a person)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    materialised_at = models.DateTimeField(null=True, blank=True)
    materialised_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One profile in one segment, as computed from `definition_version` at `computed_at`.

    A derived table rebuilt by SQL (INSERT ... SELECT). Its foreign keys have no database
    constraint: per-row FK triggers would dominate a large materialisation, and the services keep
    the rows right (merge moves them, erasure and segment deletion delete them, refresh rebuilds).
    Indexes are the minimum: (segment, profile) unique, and profile for merge and erasure.
    """

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="memberships"
    )
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, db_constraint=False, related_name="+")
    definition_version = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "profile"], name="segment_membership_uniq")]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.profile_id}"


class SegmentExport(models.Model):
    """An activation file: consented members of a segment for one purpose and channel.

    The payload is sealed under this export's own id as the subject (privacy.crypto), so
    shredding that key after the download or at expiry leaves no readable copy at rest.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        DOWNLOADED = "downloaded", "Downloaded"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="exports")
    definition_version = models.PositiveIntegerField()
    purpose = models.CharField(max_length=64)
    channel = models.CharField(max_length=20)
    recipient_name = models.CharField(max_length=120, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=64)
    requested_role = models.CharField(max_length=20)
    requested_kind = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    downloaded_at = models.DateTimeField(null=True, blank=True)
    payload = models.BinaryField(null=True, blank=True)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    # Excluded members (no consent, restricted, suppressed, erased) as a DP count only.
    excluded_dp = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="segment_export_status")]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"
