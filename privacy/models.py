"""Models of the privacy app, defined next to the code that owns them."""

from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.crypto.models import SubjectKey

__all__ = ["AuditCheckpoint", "AuditEntry", "SubjectKey"]
