"""Models of the privacy app, defined next to the code that owns them."""

from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.compliance.models import Breach, Disclosure, ImpactAssessment, Recipient  # issue 10
from privacy.crypto.models import SubjectKey
from privacy.dp.models import BudgetAccount, BudgetCharge, DpRelease
from privacy.dsar.models import DataSubjectRequest

__all__ = [
    "AuditCheckpoint",
    "AuditEntry",
    "Breach",
    "BudgetAccount",
    "BudgetCharge",
    "DataSubjectRequest",
    "Disclosure",
    "DpRelease",
    "ImpactAssessment",
    "Recipient",
    "SubjectKey",
]
