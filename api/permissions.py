"""Role permissions for API views. Denials are audited (permission.denied)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from cdp.actor import Role
from privacy.audit import AuditAction, Outcome, audit_record


def route_of(request) -> str:
    """The URL pattern that matched (e.g. "api/v1/keys/<str:prefix>"), never the raw path: a path
    can carry whatever the client typed, including personal data, and it goes into audit entries."""
    match = getattr(request, "resolver_match", None)
    return (match.route if match is not None else "")[:200] or "unresolved"


def role_required(*roles: Role | str) -> type[BasePermission]:
    """A DRF permission class that admits only the given API roles."""
    allowed = frozenset(str(r) for r in roles)

    class HasRole(BasePermission):
        message = f"this endpoint is for the role(s): {', '.join(sorted(allowed))}"

        def has_permission(self, request, view) -> bool:
            actor = getattr(request, "actor", None)
            if actor is None:
                return False
            if actor.role in allowed:
                return True
            audit_record(
                actor=actor,
                action=AuditAction.PERMISSION_DENIED,
                outcome=Outcome.DENIED,
                details={"route": route_of(request), "method": request.method, "allowed": sorted(allowed)},
            )
            return False

    HasRole.__name__ = "HasRole_" + "_".join(sorted(allowed))
    return HasRole
