"""Rectification (GDPR Art. 16; PIPL Art. 46): corrected traits through the service layer."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, Role
from cdp.models import Profile, ProfileStatus, TraitDefinition
from privacy.audit import AuditAction, audit_record
from privacy.crypto import seal
from privacy.crypto.traits import traits_update


class RectificationError(ValueError):
    """Unknown trait keys, or no such active profile."""


def profile_rectify(*, actor: Actor, profile_id: uuid.UUID | str, traits: dict[str, Any]) -> list[str]:
    """Replace the given traits with corrected values and return the keys changed (sorted).

    Why the observation history is rewritten too: the old value must not survive anywhere
    readable. The vault is re-sealed with a fresh nonce; earlier observations of the corrected
    keys (sealed old values) are deleted and one observation with the new value replaces them,
    so an unmerge rebuilds the corrected value. The audit entry names keys only, never values.
    """
    from identity.models import TraitObservation

    actor.require_role(Role.COMPLIANCE, Role.STEWARD, Role.SYSTEM)
    definitions = {d.key: d for d in TraitDefinition.objects.filter(key__in=list(traits), kind="trait")}
    unknown = sorted(set(traits) - set(definitions))
    if unknown:
        raise RectificationError(f"unknown traits: {', '.join(k[:40] for k in unknown)}")
    now = timezone.now()
    with transaction.atomic():
        profile = Profile.objects.select_for_update().filter(pk=profile_id, status=ProfileStatus.ACTIVE).first()
        if profile is None:
            raise RectificationError("no such active profile")
        personal = {k: v for k, v in traits.items() if definitions[k].personal}
        plain = {k: v for k, v in traits.items() if not definitions[k].personal}
        if personal:
            profile.vault = traits_update(profile_id=profile.pk, blob=profile.vault, changes=personal)
        if plain:
            profile.attributes = {**(profile.attributes or {}), **plain}
        observed = dict(profile.trait_observed_at or {})
        for key in traits:
            observed[key] = now.isoformat()
        profile.trait_observed_at = observed
        profile.save()
        TraitObservation.objects.filter(profile=profile, key__in=list(traits)).delete()
        for key, value in traits.items():
            is_personal = definitions[key].personal
            TraitObservation.objects.create(
                profile=profile,
                origin_profile=profile,
                key=key,
                personal=is_personal,
                sealed_value=seal(subject_id=profile.pk, field=f"trait:{key}", value=value) if is_personal else None,
                plain_value=None if is_personal else value,
                observed_at=now,
                message_id="rectification",
            )
        changed = sorted(traits)
        audit_record(
            actor=actor,
            action=AuditAction.PROFILE_RECTIFY,
            subject_id=profile.pk,
            object_type="profile",
            object_id=profile.pk,
            details={"keys": changed},
        )
    return changed
