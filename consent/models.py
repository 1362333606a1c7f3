"""Purposes of processing (the contract other apps read). The ledger models live beside them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class LegalBasis(models.TextChoices):
    CONSENT = "consent", "Consent (GDPR Art. 6(1)(a); PIPL Art. 13(1))"
    CONTRACT = "contract", "Contract (GDPR Art. 6(1)(b); PIPL Art. 13(2))"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation (GDPR Art. 6(1)(c); PIPL Art. 13(3))"
    VITAL_INTERESTS = "vital_interests", "Vital interests (GDPR Art. 6(1)(d); PIPL Art. 13(4))"
    LEGITIMATE_INTERESTS = "legitimate_interests", "Legitimate interests (GDPR Art. 6(1)(f); EU only)"


class Jurisdiction(models.TextChoices):
    PIPL = "pipl", "China (PIPL)"
    GDPR = "gdpr", "EU (GDPR)"


class SeparateConsent(models.TextChoices):
    """Why PIPL requires a separate consent for this purpose, if it does."""

    NONE = "", "Not required"
    SENSITIVE = "sensitive", "Sensitive personal information (PIPL Art. 29)"
    PROVISION = "provision", "Provision to another handler (PIPL Art. 23)"
    DISCLOSURE = "disclosure", "Public disclosure (PIPL Art. 25)"
    CROSS_BORDER = "cross_border", "Cross-border transfer (PIPL Art. 39)"


class Purpose(models.Model):
    """A purpose of processing, with what a record of processing (GDPR Art. 30) needs."""

    code = models.SlugField(max_length=64, unique=True)
    name_en = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=200)
    description_en = models.TextField(blank=True, default="")
    description_zh = models.TextField(blank=True, default="")
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices, default=LegalBasis.CONSENT)
    jurisdictions = models.JSONField(default=list, help_text='Where it applies: ["pipl", "gdpr"].')
    data_categories = models.JSONField(default=list, help_text="Trait registry data categories it uses.")
    channels = models.JSONField(default=list, blank=True, help_text="Channels it covers, e.g. ['sms']; empty: any.")
    retention_days = models.PositiveIntegerField(help_text="How long data for this purpose is kept.")
    recipients = models.JSONField(default=list, blank=True, help_text="Categories of recipients.")
    separate_consent = models.CharField(max_length=16, choices=SeparateConsent.choices, blank=True, default="")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        if self.legal_basis == LegalBasis.LEGITIMATE_INTERESTS and Jurisdiction.PIPL in (self.jurisdictions or []):
            raise ValidationError("PIPL has no legitimate-interests basis; this purpose cannot apply under PIPL")
        unknown = set(self.jurisdictions or []) - set(Jurisdiction.values)
        if unknown:
            raise ValidationError(f"unknown jurisdictions: {sorted(unknown)}")

    @property
    def needs_consent(self) -> bool:
        return self.legal_basis == LegalBasis.CONSENT or bool(self.separate_consent)


class Language(models.TextChoices):
    """Notice languages, spelled as Django's LANGUAGES so the portal's locale picks the text."""

    EN = "en", "English"
    ZH_HANS = "zh-hans", "简体中文"


class PolicyVersion(models.Model):
    """The notice a person agrees to: text per purpose, version and language, with its SHA-256.

    Versions are numbered per purpose and shared by the languages of one release. A `material`
    version changes what people agreed to: every consent given to an earlier version becomes
    stale (not granted) until the person consents again. Version 1 is material by definition.
    """

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="policy_versions")
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=8, choices=Language.choices)
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64, editable=False)
    published_at = models.DateTimeField()
    material = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version", "language"], name="policy_purpose_version_lang_uniq")
        ]
        ordering = ["purpose", "version", "language"]

    def __str__(self) -> str:
        return f"{self.purpose_id} v{self.version} {self.language}"

    def save(self, *args, **kwargs):
        self.text_sha256 = self.hash_text(self.text)
        super().save(*args, **kwargs)

    @staticmethod
    def hash_text(text: str) -> str:
        import hashlib

        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConsentEvent(models.TextChoices):
    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    GUARDIAN_GRANTED = "guardian_granted", "Granted by a parent or guardian"


GRANTING_EVENTS = (ConsentEvent.GRANTED, ConsentEvent.GUARDIAN_GRANTED)


class ConsentMethod(models.TextChoices):
    PORTAL_TOGGLE = "portal_toggle", "Portal toggle"
    COOKIE_BANNER = "cookie_banner", "Cookie banner"
    POS_SIGNATURE = "pos_signature", "POS signature"
    API = "api", "API"
    STAFF = "staff", "Staff on the person's instruction"
    SYSTEM = "system", "System (expiry)"


class LedgerImmutable(Exception):
    """Consent records are evidence: they are appended, never changed or removed."""


class ConsentRecord(models.Model):
    """One append-only consent event: the evidence a regulator asks for.

    Who (the pseudonymous subject), what (purpose, channel scope, the policy version and the
    SHA-256 of the text shown), how (source, method, actor), when, and keyed hashes of the
    client address and user agent. Never updated or deleted: the model refuses in Python and
    a trigger refuses on PostgreSQL (migration 0003). `on_delete=PROTECT` everywhere: erasure
    keeps the records, which hold only the pseudonymous subject id and keyed hashes
    (docs/adr/0005-consent-ledger.md).
    """

    id = models.BigAutoField(primary_key=True)
    subject = models.ForeignKey("cdp.Profile", on_delete=models.PROTECT, related_name="consent_records")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="consent_records")
    event = models.CharField(max_length=20, choices=ConsentEvent.choices)
    channel = models.CharField(max_length=20, blank=True, default="", help_text="Channel scope; empty: all.")
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="consent_records"
    )
    policy_version_number = models.PositiveIntegerField(default=0)
    policy_text_sha256 = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=64, blank=True, default="", help_text="Source name, e.g. web-shop.")
    method = models.CharField(max_length=20, choices=ConsentMethod.choices)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=128)
    occurred_at = models.DateTimeField(help_text="When the person acted (may precede recording).")
    recorded_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True, default="")
    user_agent_hash = models.CharField(max_length=64, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True, help_text="Non-personal references only.")
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["subject", "purpose", "occurred_at"]),
            models.Index(fields=["recorded_at"]),
        ]
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.event} {self.purpose_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise LedgerImmutable("consent records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutable("consent records are append-only")

    @property
    def grants(self) -> bool:
        return self.event in GRANTING_EVENTS


class ConsentState(models.Model):
    """The current state per subject, purpose and channel scope: the latest record's facts.

    Derived from the ledger and written in the same transaction as the record, so enforcement
    can filter in SQL without replaying history. `consent_state_rebuild` recomputes it.
    """

    subject = models.ForeignKey("cdp.Profile", on_delete=models.CASCADE, related_name="consent_states")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="consent_states")
    channel = models.CharField(max_length=20, blank=True, default="")
    event = models.CharField(max_length=20, choices=ConsentEvent.choices)
    record = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="+")
    policy_version_number = models.PositiveIntegerField(default=0)
    occurred_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "purpose", "channel"], name="consent_state_subject_purpose_uniq")
        ]
        indexes = [models.Index(fields=["purpose", "event"])]

    def __str__(self) -> str:
        return f"{self.subject_id} {self.purpose_id}/{self.channel or '*'} {self.event}"


class RestrictionKind(models.TextChoices):
    RESTRICTION = "restriction", "Restriction of processing (GDPR Art. 18)"
    OBJECTION = "objection", "Objection / refusal (GDPR Art. 21; PIPL Arts. 24, 44)"


class ProcessingRestriction(models.Model):
    """A person restricted processing or objected to it; enforcement excludes them at once.

    `purpose` empty: every purpose. Created by data-subject requests; lifted by `active=False`.
    """

    subject = models.ForeignKey("cdp.Profile", on_delete=models.CASCADE, related_name="processing_restrictions")
    kind = models.CharField(max_length=12, choices=RestrictionKind.choices)
    purpose = models.ForeignKey(
        Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="processing_restrictions"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject", "active"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id} {self.purpose_id or '*'}"


class PortalLink(models.Model):
    """A single-use, expiring link to the portal. Only the SHA-256 of the token is stored."""

    subject = models.ForeignKey("cdp.Profile", on_delete=models.CASCADE, related_name="portal_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=128, blank=True, default="")

    def __str__(self) -> str:
        return f"portal link #{self.pk}"
