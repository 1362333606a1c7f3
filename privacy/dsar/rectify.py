"""Rectification (GDPR Art. 16; PIPL Art. 46): corrected traits through the service layer."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp.actor import Actor, Role
from cdp.models import Profile, ProfileStatus, TraitDefinition
from privacy.audit import AuditAction, audit_record
from privacy.crypto import open_sealed, seal
from privacy.crypto.traits import traits_update

OBSERVATION_FIELD = "trait_observation"  # identity.graph.OBSERVATION_FIELD


class RectificationError(ValueError):
    """Unknown trait keys, or no such active profile."""


def _drop_old_observations(profile: Profile, keys: set[str]) -> None:
    """Remove the corrected keys from every earlier observation (re-sealed without them, or
    deleted when nothing is left), so the old values are gone, not merely superseded."""
    from identity.models import TraitObservation

    for obs in TraitObservation.objects.select_for_update().filter(profile=profile):
        if not keys & set(obs.keys or []):
            continue
        remaining = [k for k in obs.keys if k not in keys]
        if not remaining:
            obs.delete()
            continue
        sealed = {}
        if obs.sealed_values:
            sealed = open_sealed(subject_id=obs.origin_profile_id, field=OBSERVATION_FIELD, blob=obs.sealed_values)
            sealed = {k: v for k, v in sealed.items() if k not in keys}
        obs.sealed_values = (
            seal(subject_id=obs.origin_profile_id, field=OBSERVATION_FIELD, value=sealed) if sealed else None
        )
        obs.plain_values = {k: v for k, v in (obs.plain_values or {}).items() if k not in keys}
        obs.keys = remaining
        obs.save(update_fields=["sealed_values", "plain_values", "keys"])


def profile_rectify(*, actor: Actor, profile_id: uuid.UUID | str, traits: dict[str, Any]) -> list[str]:
    """Replace the given traits with corrected values and return the keys changed (sorted).

    Why the observation history is rewritten too: the old value must not survive anywhere
    readable. The vault is re-sealed with a fresh nonce; the corrected keys are removed from
    earlier observations (re-sealed without them) and one observation with the new values is
    added, so an unmerge rebuilds the corrected value. The audit entry names keys only, never values.
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
        _drop_old_observations(profile, set(traits))
        TraitObservation.objects.create(
            profile=profile,
            origin_profile=profile,
            keys=sorted(traits),
            sealed_values=seal(subject_id=profile.pk, field=OBSERVATION_FIELD, value=personal) if personal else None,
            plain_values=plain,
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
