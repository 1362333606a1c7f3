"""Resolution and merging: create, absorb, merge into the oldest with evidence, newest trait wins."""

from __future__ import annotations

import pytest

from cdp.models import Event, Profile, ProfileStatus
from identity.models import Identifier, MergeEvidence, TraitObservation
from privacy.audit.models import AuditEntry
from privacy.crypto import open_sealed
from tests.identity.conftest import msg

pytestmark = pytest.mark.django_db


def active_profiles():
    return Profile.objects.filter(status=ProfileStatus.ACTIVE)


def vault(profile):
    return open_sealed(subject_id=profile.id, field="traits", blob=profile.vault) if profile.vault else {}


def test_new_identifier_creates_profile_and_known_one_absorbs(send):
    r = send(msg(ids={"email": " Li.Na@Example.COM "}, traits={"name": "李娜", "city": "Shanghai"}))
    assert r.results[0].status == "accepted"
    send(msg("track", ids={"email": "li.na@example.com"}, event="purchase", properties={"amount": 120.5}))
    assert active_profiles().count() == 1
    profile = active_profiles().get()
    assert vault(profile) == {"name": "李娜"}
    assert profile.attributes == {"city": "Shanghai"}
    assert profile.journey_stage == "purchase"
    assert Event.objects.filter(profile=profile).count() == 2
    ident = Identifier.objects.get()
    assert ident.id_type == "email" and b"example" not in bytes(ident.sealed_value)
    assert open_sealed(subject_id=ident.origin_profile_id, field="identifier:email", blob=ident.sealed_value) == (
        "li.na@example.com"
    )


def test_two_profiles_merge_into_oldest_with_evidence_and_newest_trait_wins(send):
    send(msg(ids={"email": "a@example.com"}, traits={"name": "Anna"}, ts="2026-01-01T10:00:00Z"))
    send(msg(ids={"phone": "13812345678"}, traits={"name": "Anna Schmidt"}, ts="2026-01-03T10:00:00Z"))
    oldest = Profile.objects.order_by("created_at").first()
    assert active_profiles().count() == 2
    r = send(msg(ids={"email": "a@example.com", "phone": "+86 138 1234 5678"}, mid="link"))
    assert r.merges == 1
    survivor = active_profiles().get()
    assert survivor.id == oldest.id
    assert vault(survivor) == {"name": "Anna Schmidt"}  # newest observation wins
    history = [o for o in TraitObservation.objects.filter(profile=survivor) if "name" in o.keys]
    assert len(history) == 2  # history kept
    absorbed = Profile.objects.get(status=ProfileStatus.MERGED)
    assert absorbed.merged_into_id == survivor.id and absorbed.vault is None
    assert Event.objects.filter(profile=survivor).count() == 3
    assert Identifier.objects.filter(profile=survivor).count() == 2
    evidence = MergeEvidence.objects.get()
    assert evidence.survivor_id == survivor.id and evidence.absorbed_id == absorbed.id
    assert evidence.message_id == "link" and evidence.rule == "shared_identifier"
    assert {ref["type"] for ref in evidence.identifier_refs} == {"email", "phone"}
    merge_audit = AuditEntry.objects.get(action="profile.merge")
    assert merge_audit.subject_id == survivor.id and merge_audit.object_id == str(evidence.pk)


def test_late_trait_joins_history_without_overwriting(send):
    send(msg(ids={"email": "b@example.com"}, traits={"name": "New"}, ts="2026-02-01T00:00:00Z"))
    send(msg(ids={"email": "b@example.com"}, traits={"name": "Old"}, ts="2026-01-01T00:00:00Z"))
    profile = active_profiles().get()
    assert vault(profile) == {"name": "New"}
    assert len([o for o in TraitObservation.objects.all() if "name" in o.keys]) == 2


def test_alias_links_two_identifiers(send):
    send(msg(ids={"cookie_id": "ck-1"}))
    send(msg(ids={"loyalty_id": "L-77"}))
    r = send(msg("alias", ids={"cookie_id": "ck-1", "loyalty_id": "L-77"}))
    assert r.merges == 1 and MergeEvidence.objects.get().rule == "alias"
    assert active_profiles().count() == 1


def test_one_audit_entry_per_batch_with_counts_only(send):
    send(msg(ids={"email": "c@example.com"}), msg(ids={"email": "bad"}), msg(ids={"email": "d@example.com"}))
    entry = AuditEntry.objects.get(action="ingest.batch")
    assert entry.details["accepted"] == 2 and entry.details["rejected"] == 1
    assert "example" not in str(entry.details)


def test_personal_event_property_is_sealed_and_follows_a_merge(send):
    from cdp.models import TraitDefinition
    from cdp.services.profiles import event_properties

    TraitDefinition.objects.create(key="delivery_note", kind="property", data_type="string", personal=True)
    send(msg(ids={"email": "older@example.com"}, ts="2026-01-01T00:00:00Z"))  # the older profile survives
    send(
        msg(
            "track",
            ids={"phone": "13955556666"},
            event="purchase",
            properties={"amount": 5, "delivery_note": "放在门口"},
            ts="2026-01-02T00:00:00Z",
        )
    )
    event = Event.objects.get(name="purchase")
    phone_profile = event.profile_id
    assert event.properties == {"amount": 5.0} and "门口".encode() not in bytes(event.sealed_properties)
    r = send(msg("alias", ids={"email": "older@example.com", "phone": "13955556666"}))
    assert r.merges == 1
    event.refresh_from_db()
    survivor = active_profiles().get()
    assert event.profile_id == survivor.id != phone_profile
    assert event_properties(event) == {"amount": 5.0, "delivery_note": "放在门口"}


def test_unknown_traits_can_be_quarantined_instead_of_rejected(send, settings):
    settings.CDP_INGEST_UNKNOWN_KEYS = "quarantine"
    r = send(msg(ids={"email": "q@example.com"}, traits={"name": "Q", "favourite_colour": "blue"}))
    assert r.results[0].status == "accepted"
    profile = active_profiles().get()
    assert vault(profile) == {"name": "Q"}
    observation = TraitObservation.objects.get()
    assert observation.keys == ["name", "quarantine.favourite_colour"] and observation.plain_values == {}
    assert b"blue" not in bytes(observation.sealed_values)
    opened = open_sealed(
        subject_id=observation.origin_profile_id, field="trait_observation", blob=observation.sealed_values
    )
    assert opened == {"name": "Q", "quarantine.favourite_colour": "blue"}


def test_merge_chains_stay_flat(send):
    send(msg(ids={"email": "one@example.com"}, ts="2026-01-01T00:00:00Z"))
    send(msg(ids={"phone": "13711110001"}))
    send(msg(ids={"loyalty_id": "LX1"}))
    send(msg("alias", ids={"phone": "13711110001", "loyalty_id": "LX1"}))  # loyalty's profile into phone's
    send(msg("alias", ids={"email": "one@example.com", "phone": "13711110001"}))  # phone's into email's
    survivor = active_profiles().get()
    merged = Profile.objects.filter(status=ProfileStatus.MERGED)
    assert merged.count() == 2 and set(merged.values_list("merged_into_id", flat=True)) == {survivor.id}


def test_a_crash_mid_batch_writes_nothing(send, monkeypatch):
    import cdp.services.ingest as ingest

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "audit_record_many", boom)  # fails after every row was written
    with pytest.raises(RuntimeError):
        send(msg(ids={"email": "crash@example.com"}, traits={"name": "C"}))
    assert not Profile.objects.exists() and not Event.objects.exists() and not Identifier.objects.exists()
    monkeypatch.undo()
    assert send(msg(ids={"email": "crash@example.com"})).results[0].status == "accepted"


def test_a_new_profile_can_survive_a_merge_of_sealed_rows(send):
    """The survivor of a merge may be a profile this batch creates (it is the older one when
    the other was stamped later, as with two batches racing): the absorbed profile's sealed
    event properties are re-sealed under it, so its data key must exist first."""
    from datetime import timedelta

    from django.utils import timezone

    from cdp.models import TraitDefinition

    TraitDefinition.objects.create(
        kind=TraitDefinition.Kind.PROPERTY, key="delivery_address", data_type="string", personal=True
    )
    send(msg("track", ids={"phone": "13812345678"}, event="purchase", properties={"delivery_address": "上海"}))
    later = Profile.objects.get()
    Profile.objects.filter(pk=later.pk).update(created_at=timezone.now() + timedelta(hours=1))
    r = send(
        msg(ids={"email": "new.one@example.com"}, mid="n1"),
        msg("alias", ids={"email": "new.one@example.com", "phone": "13812345678"}, mid="n2"),
    )
    assert [x.status for x in r.results] == ["accepted", "accepted"] and r.merges == 1
    survivor = active_profiles().get()
    assert survivor.pk != later.pk
    event = Event.objects.get(name="purchase")
    assert event.profile_id == survivor.pk
    assert open_sealed(subject_id=survivor.pk, field="properties", blob=event.sealed_properties) == {
        "delivery_address": "上海"
    }
