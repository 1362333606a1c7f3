"""The data-subject request: what was asked, by whom (pseudonymously), and by when."""

from __future__ import annotations

from django.db import models


class DsarType(models.TextChoices):
    ACCESS = "access", "Access (GDPR Art. 15; PIPL Art. 45)"
    PORTABILITY = "portability", "Portability (GDPR Art. 20; PIPL Art. 45)"
    RECTIFICATION = "rectification", "Rectification (GDPR Art. 16; PIPL Art. 46)"
    ERASURE = "erasure", "Erasure (GDPR Art. 17; PIPL Art. 47)"
    RESTRICTION = "restriction", "Restriction (GDPR Art. 18; PIPL Art. 44)"
    OBJECTION = "objection", "Objection (GDPR Art. 21; PIPL Art. 44)"


class DsarJurisdiction(models.TextChoices):
    PIPL = "pipl", "China (PIPL)"
    GDPR = "gdpr", "EU (GDPR)"


class DsarChannel(models.TextChoices):
    PORTAL = "portal", "Customer portal"
    API = "api", "API"
    STAFF = "staff", "Staff"


class DsarStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFIED = "verified", "Verified"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"


class VerificationMethod(models.TextChoices):
    NONE = "", "Not verified yet"
    PORTAL_LINK = "portal_link", "Single-use portal link sent to a known contact"
    STAFF_CHECK = "staff_check", "Checked by staff"
    ID_DOCUMENT = "id_document", "Identity document seen"
    KNOWN_CONTACT = "known_contact", "One-time code to a known contact"


class DataSubjectRequest(models.Model):
    """One request by a person about their data. `due_at` comes from the jurisdiction
    (settings.CDP_DSAR_DEADLINES); the subject is the pseudonymous profile, never a name."""

    type = models.CharField(max_length=16, choices=DsarType.choices)
    jurisdiction = models.CharField(max_length=8, choices=DsarJurisdiction.choices)
    channel = models.CharField(max_length=8, choices=DsarChannel.choices)
    subject = models.ForeignKey("cdp.Profile", on_delete=models.PROTECT, related_name="data_subject_requests")
    verification_method = models.CharField(max_length=16, choices=VerificationMethod.choices, blank=True, default="")
    verified_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=DsarStatus.choices, default=DsarStatus.RECEIVED)
    reason = models.TextField(blank=True, default="", help_text="Why it was rejected or extended; told to the person.")
    assignee = models.CharField(max_length=128, blank=True, default="", help_text="Actor id of the assignee.")
    created_by = models.CharField(max_length=128, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    # Working the request (issue 9). No personal data in any of these: counts, codes, ids.
    extension_reason = models.TextField(
        blank=True, default="", help_text="GDPR Art. 12(3) extension; told to the person."
    )
    extended_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="Scope: partial erasure, restriction purpose.")
    progress = models.JSONField(default=dict, blank=True, help_text="Erasure steps done and their counts (resumable).")
    result = models.JSONField(default=dict, blank=True, help_text="What was done: counts, package digest.")
    deadline_flag = models.CharField(max_length=8, blank=True, default="", help_text="'', 'near' or 'overdue'.")

    OPEN_STATUSES = ("received", "verified", "in_progress")

    class Meta:
        app_label = "privacy"
        indexes = [models.Index(fields=["status", "due_at"]), models.Index(fields=["subject", "received_at"])]
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"DSAR #{self.pk} {self.type} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class DsarPackage(models.Model):
    """An access/portability package (zip), sealed under its own key subject `key_id` so that
    it is never plaintext at rest; the key is shredded when it is downloaded (once) or expires."""

    request = models.OneToOneField(DataSubjectRequest, on_delete=models.CASCADE, related_name="package")
    subject = models.ForeignKey("cdp.Profile", on_delete=models.CASCADE, related_name="+")
    key_id = models.UUIDField(help_text="Crypto subject whose data key seals the package.")
    blob = models.BinaryField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "privacy"

    def __str__(self) -> str:
        return f"package of DSAR #{self.request_id}"
