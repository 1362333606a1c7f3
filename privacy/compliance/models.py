"""Compliance operations: recipients register, disclosures, breach register, impact assessments.

Why these live next to the audit trail (privacy app): they are the compliance officer's records,
kept apart from the marketing data they describe, and every change to them is audited.
"""

from __future__ import annotations

from django.db import models


class RecipientRole(models.TextChoices):
    # PIPL Art. 21 entrusted party / GDPR Art. 28 processor: acts on our instructions.
    PROCESSOR = "processor", "Entrusted processor (PIPL Art. 21 / GDPR Art. 28)"
    # PIPL Art. 23 another personal-information handler / independent controller.
    HANDLER = "handler", "Another handler / independent controller (PIPL Art. 23)"


class TransferMechanism(models.TextChoices):
    NONE = "", "None (domestic recipient)"
    # PIPL Art. 38
    SECURITY_ASSESSMENT = "pipl_security_assessment", "PIPL Art. 38(1): CAC security assessment"
    CERTIFICATION = "pipl_certification", "PIPL Art. 38(2): personal-information protection certification"
    STANDARD_CONTRACT = "pipl_standard_contract", "PIPL Art. 38(3): CAC standard contract"
    # GDPR Arts. 45-47
    ADEQUACY = "gdpr_adequacy", "GDPR Art. 45: adequacy decision"
    SCC = "gdpr_scc", "GDPR Art. 46(2)(c): standard contractual clauses"
    BCR = "gdpr_bcr", "GDPR Art. 47: binding corporate rules"


class Recipient(models.Model):
    """A destination outside the platform that may receive personal data (GDPR Art. 30(1)(d))."""

    name = models.CharField(max_length=120, unique=True)
    contact = models.CharField(
        max_length=200, help_text="Business contact (organisation mailbox), not a person's data."
    )
    role = models.CharField(max_length=12, choices=RecipientRole.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 country where the recipient processes.")
    transfer_mechanism = models.CharField(max_length=32, choices=TransferMechanism.choices, blank=True, default="")
    purposes = models.JSONField(default=list, help_text="Purpose codes it may receive data for.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Disclosure(models.Model):
    """One person's data given to one recipient by one export (GDPR Art. 19 look-up)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="disclosures")
    subject_id = models.UUIDField(db_index=True)
    export_id = models.UUIDField()
    purpose = models.CharField(max_length=64)
    disclosed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "subject_id", "export_id"], name="disclosure_unique")
        ]

    def __str__(self) -> str:
        return f"disclosure to {self.recipient_id} ({self.export_id})"


class BreachStatus(models.TextChoices):
    OPEN = "open", "Open"
    NOTIFIED = "notified", "Authority notified"
    CLOSED = "closed", "Closed"


class Breach(models.Model):
    """A personal-data breach (GDPR Arts. 33-34, PIPL Art. 57) and its 72-hour clock."""

    title = models.CharField(max_length=200)
    discovered_at = models.DateTimeField()
    data_categories = models.JSONField(default=list)
    # What the incident names, to estimate the people affected from the audit trail.
    actor_id = models.CharField(max_length=64, blank=True, default="")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    affected_estimate = models.PositiveIntegerField(null=True, blank=True)
    cause = models.TextField(blank=True, default="")
    measures = models.TextField(blank=True, default="")
    individuals_must_be_told = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=BreachStatus.choices, default=BreachStatus.OPEN)
    deadline_at = models.DateTimeField()
    deadline_flag = models.CharField(max_length=10, blank=True, default="", help_text="'', 'near' or 'overdue'.")
    notified_at = models.DateTimeField(null=True, blank=True)
    individuals_notified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-discovered_at"]

    def __str__(self) -> str:
        return f"breach {self.pk} ({self.status})"


class AssessmentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


class ImpactAssessment(models.Model):
    """A personal-information protection impact assessment (PIPL Arts. 55-56, GDPR Art. 35)."""

    purpose = models.CharField(max_length=64, db_index=True)
    content = models.JSONField(help_text="Assessment content: purpose, necessity, risks, measures (PIPL Art. 56).")
    status = models.CharField(max_length=10, choices=AssessmentStatus.choices, default=AssessmentStatus.DRAFT)
    created_by = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.CharField(max_length=64, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateField(help_text="At least three years after the assessment (PIPL Art. 56).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"assessment {self.pk} for {self.purpose} ({self.status})"
