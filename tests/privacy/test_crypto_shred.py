"""Crypto-shredding: after subject_shred nothing of the subject opens; others are untouched."""

from __future__ import annotations

import uuid

import pytest

from cdp.actor import PermissionDenied, Role
from cdp.models import Event, Profile
from privacy.audit.models import AuditEntry
from privacy.crypto import (
    KeyShreddedError,
    clear_data_key_cache,
    open_sealed,
    properties_open,
    properties_seal,
    seal,
    traits_open,
    traits_seal,
)
from privacy.crypto.models import SubjectKey
from privacy.crypto.services import subject_shred
from tests.factories import EventFactory, ProfileFactory


def _person(name: str, email: str) -> tuple[Profile, Event, bytes]:
    profile = ProfileFactory()
    profile.vault = traits_seal(profile_id=profile.id, traits={"name": name, "email": email})
    profile.save(update_fields=["vault"])
    event = EventFactory(profile=profile)
    event.sealed_properties = properties_seal(profile_id=profile.id, properties={"address": f"{name}的地址"})
    event.save(update_fields=["sealed_properties"])
    extra = seal(subject_id=profile.id, field="email", value=email)
    return profile, event, extra


def _open_all(profile: Profile, event: Event, extra: bytes) -> list:
    profile.refresh_from_db()
    event.refresh_from_db()
    return [
        traits_open(profile_id=profile.id, blob=profile.vault),
        properties_open(profile_id=profile.id, blob=event.sealed_properties),
        open_sealed(subject_id=profile.id, field="email", blob=extra),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.STEWARD, Role.COMPLIANCE, Role.SYSTEM])
def test_after_shred_nothing_of_the_subject_opens_and_others_are_untouched(make_actor, role):
    alice = _person("张伟", "zhang.wei@example.com")
    bob = _person("Bob Marsh", "bob@example.com")
    bob_before = _open_all(*bob)
    assert _open_all(*alice)[0]["name"] == "张伟"  # alice's key is now in this thread's cache

    assert subject_shred(actor=make_actor(role, purpose="erasure"), subject_id=alice[0].id) is True

    for _attempt in range(2):  # straight after (the cache was dropped) and from the database
        profile, event, extra = alice
        with pytest.raises(KeyShreddedError):
            traits_open(profile_id=profile.id, blob=profile.vault)
        with pytest.raises(KeyShreddedError):
            properties_open(profile_id=profile.id, blob=event.sealed_properties)
        with pytest.raises(KeyShreddedError):
            open_sealed(subject_id=profile.id, field="email", blob=extra)
        clear_data_key_cache()
    # No resurrection: new data for the erased subject cannot be sealed under a fresh key.
    with pytest.raises(KeyShreddedError):
        traits_seal(profile_id=alice[0].id, traits={"name": "张伟"})
    assert _open_all(*bob) == bob_before

    row = SubjectKey.objects.get(subject_id=alice[0].id)
    assert row.wrapped is None and row.shredded_at is not None
    entry = AuditEntry.objects.get(action="key.shred")
    assert (entry.subject_id, entry.outcome, entry.role, entry.purpose) == (alice[0].id, "ok", role, "erasure")
    assert entry.details == {"destroyed": True}


@pytest.mark.django_db
def test_shred_is_idempotent_and_covers_subjects_without_a_key(system_actor):
    profile, _event, _extra = _person("Lena Fox", "lena@example.com")
    assert subject_shred(actor=system_actor, subject_id=profile.id) is True
    assert subject_shred(actor=system_actor, subject_id=str(profile.id)) is False
    never_keyed = uuid.uuid4()
    assert subject_shred(actor=system_actor, subject_id=never_keyed) is False
    with pytest.raises(KeyShreddedError):  # a later ingestion cannot mint a key for them
        seal(subject_id=never_keyed, field="traits", value={})
    assert list(AuditEntry.objects.filter(action="key.shred").values_list("details", flat=True)) == [
        {"destroyed": True},
        {"destroyed": False},
        {"destroyed": False},
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MARKETING, Role.ANALYST, Role.SOURCE, Role.ADMIN, Role.SUBJECT])
def test_other_roles_may_not_shred(make_actor, role):
    profile, event, extra = _person("Mia Stone", "mia@example.com")
    with pytest.raises(PermissionDenied):
        subject_shred(actor=make_actor(role), subject_id=profile.id)
    clear_data_key_cache()
    assert _open_all(profile, event, extra)[0]["name"] == "Mia Stone"
    entry = AuditEntry.objects.get(action="key.shred")
    assert (entry.outcome, entry.subject_id) == ("denied", profile.id)


@pytest.mark.django_db
def test_bad_subject_id_changes_nothing(system_actor):
    with pytest.raises(ValueError):
        subject_shred(actor=system_actor, subject_id="not-a-uuid")
    assert not SubjectKey.objects.exists() and not AuditEntry.objects.exists()
