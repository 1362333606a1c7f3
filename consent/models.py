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
