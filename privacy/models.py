"""Models of the privacy app, defined next to the code that owns them."""

from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.crypto.models import SubjectKey
from privacy.dsar.models import DataSubjectRequest  # noqa: F401

__all__ = ["AuditCheckpoint", "AuditEntry", "SubjectKey"]
