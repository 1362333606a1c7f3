"""Who is asking: the value every service function takes.

Services never look at the HTTP request. They take an `Actor`, check its role and purpose, and
write the audit entry with its identity. Views build the Actor from the authenticated API key
(or the portal session, a staff user, a system task) and hand it down.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import models


class Role(models.TextChoices):
    SOURCE = "source", "Source (write-only ingestion)"
    MARKETING = "marketing", "Marketing"
    ANALYST = "analyst", "Analyst"
    STEWARD = "steward", "Data steward"
    COMPLIANCE = "compliance", "Compliance officer"
    ADMIN = "admin", "Administrator"
    # Not API roles: customers act through the portal, the platform through its tasks.
    SUBJECT = "subject", "Data subject (portal)"
    SYSTEM = "system", "System task"


class ActorKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    STAFF = "staff", "Staff user"
    PORTAL = "portal", "Portal session"
    SYSTEM = "system", "System task"


class PermissionDenied(Exception):
    """A service refused the actor: wrong role, or no purpose where one is required.

    The message names the rule, never personal data. The API maps it to 403.
    """

    def __init__(self, message: str, *, code: str = "permission_denied") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Actor:
    """An authenticated caller. `actor_id` is a stable, non-personal reference (key prefix,
    staff user id, portal session's pseudonymous subject id, task name)."""

    kind: str
    actor_id: str
    role: str
    purpose: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source_id: int | None = None
    client_hash: str = ""  # keyed hash of the client address, never the address itself
    name: str = ""

    def with_purpose(self, purpose: str) -> Actor:
        return replace(self, purpose=purpose)

    def require_role(self, *roles: str | Role) -> None:
        allowed = {str(r) for r in roles}
        if self.role not in allowed:
            raise PermissionDenied(
                f"role '{self.role}' may not do this; allowed: {', '.join(sorted(allowed))}",
                code="role_not_allowed",
            )

    def require_purpose(self, allowed: Iterable[str] | None = None) -> str:
        if not self.purpose:
            raise PermissionDenied("a purpose is required for this operation", code="purpose_required")
        if allowed is not None and self.purpose not in set(allowed):
            raise PermissionDenied(f"purpose '{self.purpose}' is not allowed here", code="purpose_not_allowed")
        return self.purpose

    @classmethod
    def system(cls, task: str, *, purpose: str = "") -> Actor:
        return cls(kind=ActorKind.SYSTEM, actor_id=f"task:{task}", role=Role.SYSTEM, purpose=purpose, name=task)
