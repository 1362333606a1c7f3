"""The customer core: sources (channels), profiles, events and the trait registry.

A profile row holds no plaintext personal data. Personal traits live sealed in `vault`
(privacy.crypto), identifiers live in identity's graph as blind indexes plus sealed values,
and only attributes the trait registry declares non-personal are kept plain in `attributes`
for filtering and analytics.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models


class Channel(models.TextChoices):
    WEB = "web", "Web"
    APP = "app", "Mobile app"
    MINI_PROGRAM = "mini_program", "Mini-program"
    POS = "pos", "Store POS"
    CRM = "crm", "CRM"
    CALL_CENTER = "call_center", "Call centre"
    EMAIL = "email", "E-mail"
    OTHER = "other", "Other"


class JourneyStage(models.TextChoices):
    """The customer-experience model's stages, in order."""

    AWARENESS = "awareness", "Awareness"
    CONSIDERATION = "consideration", "Consideration"
    PURCHASE = "purchase", "Purchase"
    USE = "use", "Use"
    LOYALTY = "loyalty", "Loyalty"


class Source(models.Model):
    """A channel that sends data, authenticated by its write key (an API key of role source)."""

    name = models.SlugField(max_length=64, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.OTHER)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ProfileStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    MERGED = "merged", "Merged into another profile"
    ERASED = "erased", "Erased"


class Profile(models.Model):
    """One person. The id is the pseudonym used everywhere else (audit, segments, exports)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=ProfileStatus.choices, default=ProfileStatus.ACTIVE)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="absorbed_profiles"
    )
    # Sealed JSON of personal traits (privacy.crypto); never plaintext.
    vault = models.BinaryField(null=True, blank=True)
    # Non-personal attributes the trait registry allows in plain form (e.g. city_tier).
    attributes = models.JSONField(default=dict, blank=True)
    journey_stage = models.CharField(max_length=16, choices=JourneyStage.choices, blank=True, default="")
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When each trait's current value was observed (ISO strings): "newest value wins" needs it.
    trait_observed_at = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return str(self.id)


class Event(models.Model):
    """One accepted message. (source, message_id) is unique: that is ingestion's idempotency.

    `properties` holds only registered non-personal properties; personal ones are sealed in
    `sealed_properties` under the profile's data key.
    """

    class Type(models.TextChoices):
        IDENTIFY = "identify", "Identify"
        TRACK = "track", "Track"
        ALIAS = "alias", "Alias"
        CONSENT = "consent", "Consent"

    id = models.BigAutoField(primary_key=True)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="events")
    message_id = models.CharField(max_length=128)
    type = models.CharField(max_length=10, choices=Type.choices)
    name = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    properties = models.JSONField(default=dict, blank=True)
    sealed_properties = models.BinaryField(null=True, blank=True)
    # The profile the message's identifiers pointed to when it arrived (identity provenance):
    # unmerge moves the event back there. Null for events written before provenance existed.
    origin_profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "message_id"], name="event_source_message_uniq")]
        indexes = [
            models.Index(fields=["profile", "occurred_at"]),
            models.Index(fields=["name", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.name} ({self.message_id})"


class TraitDefinition(models.Model):
    """The registry of traits and event properties: type, sensitivity and analytic bounds.

    Why a registry: ingestion must know which values are personal (sealed) and which may be
    stored plain for filtering; DP analytics must take clamping bounds and group-by domains
    from declarations, never from the data.
    """

    class Kind(models.TextChoices):
        TRAIT = "trait", "Profile trait"
        PROPERTY = "property", "Event property"

    class DataType(models.TextChoices):
        STRING = "string", "String"
        INTEGER = "integer", "Integer"
        DECIMAL = "decimal", "Decimal"
        BOOLEAN = "boolean", "Boolean"
        DATE = "date", "Date"
        ENUM = "enum", "Enumeration"

    key = models.SlugField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRAIT)
    data_type = models.CharField(max_length=10, choices=DataType.choices)
    personal = models.BooleanField(default=True, help_text="Sealed by the vault when true.")
    sensitive = models.BooleanField(
        default=False,
        help_text="Sensitive personal information under PIPL Art. 28 / special category under GDPR Art. 9.",
    )
    filterable = models.BooleanField(default=False, help_text="Usable in segment rules and DP filters.")
    lower_bound = models.FloatField(null=True, blank=True)
    upper_bound = models.FloatField(null=True, blank=True)
    enum_values = models.JSONField(default=list, blank=True, help_text="Public domain of an enum.")
    data_category = models.CharField(max_length=64, blank=True, default="", help_text="e.g. contact, demographic")
    description = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="trait_kind_key_uniq")]
        ordering = ["kind", "key"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

    def clean(self) -> None:
        if self.filterable and self.personal:
            raise ValidationError("a personal trait cannot be filterable: it is stored sealed")
        if self.data_type == self.DataType.ENUM and not self.enum_values:
            raise ValidationError("an enum trait needs its enum_values domain")
        if (self.lower_bound is None) != (self.upper_bound is None):
            raise ValidationError("declare both bounds or neither")
        if self.lower_bound is not None and self.lower_bound > self.upper_bound:
            raise ValidationError("lower_bound must not exceed upper_bound")


from cdp.ingest_models import IngestBatch  # noqa: E402,F401 - queued ingestion batches
from cdp.segment_models import Segment, SegmentExport, SegmentMembership  # noqa: E402,F401 - segments (issue 8)
