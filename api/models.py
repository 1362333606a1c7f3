"""API keys: only a public prefix and a SHA-256 hash of the secret are stored."""

from __future__ import annotations

from django.db import models

from cdp.actor import Role
from cdp.models import Source

API_ROLES = [(r.value, r.label) for r in Role if r not in (Role.SUBJECT, Role.SYSTEM)]


class ApiKey(models.Model):
    """A key is `cdp_<prefix>_<secret>`. The secret has 256 bits of entropy, so a plain
    SHA-256 (no slow KDF) is enough to make the database copy useless for authentication."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    role = models.CharField(max_length=16, choices=API_ROLES)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, {self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # DRF treats request.user as a user object; these make an ApiKey usable as one.
    @property
    def is_authenticated(self) -> bool:
        return True
