"""Models of the privacy app, defined next to the code that owns them."""

from privacy.audit.models import AuditEntry
from privacy.crypto.models import SubjectKey
from privacy.dp.models import BudgetAccount, BudgetCharge, DpRelease

__all__ = ["AuditEntry", "BudgetAccount", "BudgetCharge", "DpRelease", "SubjectKey"]
