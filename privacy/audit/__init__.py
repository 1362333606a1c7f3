"""The hash-chained, append-only audit trail.

Every service that reads, exports or changes personal data calls `audit_record(...)` inside
the same transaction as the change, so the entry and the change commit or roll back together.
"""

from privacy.audit.actions import AuditAction, Outcome
from privacy.audit.writer import AuditItem, audit_record, audit_record_many

__all__ = ["AuditAction", "AuditItem", "Outcome", "audit_record", "audit_record_many"]
