"""Normalisation, the junk blocklist and the per-type limits that keep households apart."""

from __future__ import annotations

import pytest

from cdp.models import Profile, ProfileStatus
from identity.models import Identifier, MergeEvidence, MergeRefusal, Suppression
from identity.normalize import NormalizationError, normalize_identifier
from privacy.crypto import blind_index
from tests.identity.conftest import msg


@pytest.mark.parametrize(
    ("id_type", "raw", "canonical"),
    [
        ("email", "  Li.Na@Example.COM ", "li.na@example.com"),
        ("phone", "138 1234 5678", "+8613812345678"),
        ("phone", "+49 30 901820", "+4930901820"),
        ("phone", "0086 138-1234-5678", "+8613812345678"),
        ("device_id", "  ABC-123 ", "ABC-123"),
        ("external_id", 42, "42"),
    ],
)
def test_normalisation(id_type, raw, canonical):
    assert normalize_identifier(id_type, raw) == canonical


@pytest.mark.parametrize(
    ("id_type", "raw", "code"),
    [
        ("device_id", "null", "junk_identifier"),
        ("device_id", "undefined", "junk_identifier"),
        ("cookie_id", "0", "junk_identifier"),
        ("external_id", "anonymous", "junk_identifier"),
        ("loyalty_id", "   ", "junk_identifier"),
        ("device_id", "00000000", "junk_identifier"),
        ("phone", "11111111111", "junk_identifier"),
        ("email", "null@example.com", "junk_identifier"),
        ("email", "not-an-email", "invalid_email"),
        ("email", "a@@example.com", "invalid_email"),
        ("phone", "12", "invalid_phone"),
        ("phone", "call me", "invalid_phone"),
        ("shoe_size", "42", "unknown_identifier_type"),
        ("device_id", True, "invalid_identifier"),
    ],
)
def test_junk_and_invalid_identifiers_are_refused_with_a_reason(id_type, raw, code):
    with pytest.raises(NormalizationError) as info:
        normalize_identifier(id_type, raw)
    assert info.value.code == code
    assert str(raw).strip().lower() not in info.value.reason.lower() or not str(raw).strip()


def test_junk_blocklist_is_configurable(settings):
    settings.CDP_JUNK_IDENTIFIERS = ["guest"]
    with pytest.raises(NormalizationError):
        normalize_identifier("cookie_id", "GUEST")
    assert normalize_identifier("cookie_id", "null") == "null"


@pytest.mark.django_db
def test_junk_identifier_rejects_the_message_and_writes_nothing(send):
    r = send(msg(ids={"device_id": "undefined", "email": "ok@example.com"}))
    assert r.results[0].status == "rejected" and r.results[0].code == "junk_identifier"
    assert not Profile.objects.exists() and not Identifier.objects.exists()


@pytest.mark.django_db
def test_different_external_ids_never_merge(send):
    send(msg(ids={"external_id": "C-1", "email": "shared@example.com"}))
    r = send(msg(ids={"external_id": "C-2", "email": "shared@example.com"}))
    assert r.merges == 0
    assert Profile.objects.filter(status=ProfileStatus.ACTIVE).count() == 2
    assert MergeRefusal.objects.filter(rule="exclusive_conflict").exists()
    # And two profiles holding different external ids, linked later by a phone, stay apart.
    send(msg(ids={"external_id": "C-2", "phone": "13700000001"}))
    r = send(msg(ids={"external_id": "C-1", "phone": "13700000001"}))
    assert r.merges == 0 and not MergeEvidence.objects.exists()


@pytest.mark.django_db
def test_email_over_its_per_profile_limit_is_stored_but_never_merges(send, settings):
    settings.CDP_IDENTIFIER_TYPES = {"email": {"max_per_profile": 2}}
    send(msg(ids={"loyalty_id": "L1", "email": "e1@example.com"}))
    send(msg(ids={"loyalty_id": "L1", "email": "e2@example.com"}))
    send(msg(ids={"loyalty_id": "L1", "email": "e3@example.com"}))
    over = Identifier.objects.get(blind_index=blind_index(id_type="email", value="e3@example.com"))
    assert over.over_limit is True
    assert MergeRefusal.objects.filter(rule="over_limit", id_type="email").count() == 1
    send(msg(ids={"phone": "13700000002"}))
    r = send(msg(ids={"phone": "13700000002", "email": "e3@example.com"}))
    assert r.merges == 0  # the over-limit e-mail does not glue the phone's profile on


@pytest.mark.django_db
def test_shared_household_device_does_not_glue_people_and_goes_over_limit(send, settings):
    settings.CDP_IDENTIFIER_TYPES = {"device_id": {"max_profiles": 2}}
    people = [f"member{i}@example.com" for i in range(4)]
    for email in people:
        send(msg(ids={"device_id": "tv-box-1", "email": email}))
    assert Profile.objects.filter(status=ProfileStatus.ACTIVE).count() == 4
    assert not MergeEvidence.objects.exists()
    assert MergeRefusal.objects.filter(rule="shared_weak_id").count() >= 3
    assert Identifier.objects.get(id_type="device_id").over_limit is True


@pytest.mark.django_db
def test_anonymous_cookie_is_stitched_to_the_identified_person(send):
    send(msg("track", ids={"cookie_id": "ck-9"}, event="page_view"))
    send(msg(ids={"email": "known@example.com"}))
    r = send(msg(ids={"cookie_id": "ck-9", "email": "known@example.com"}))
    assert r.merges == 1 and MergeEvidence.objects.get().rule == "weak_stitch"


@pytest.mark.django_db
def test_suppressed_identifier_drops_the_message(send):
    Suppression.objects.create(id_type="email", blind_index=blind_index(id_type="email", value="gone@example.com"))
    r = send(msg(ids={"email": " GONE@example.com"}), msg(ids={"email": "here@example.com"}))
    assert [x.status for x in r.results] == ["suppressed", "accepted"]
    assert Profile.objects.count() == 1 and r.counts["suppressed"] == 1


@pytest.mark.django_db
def test_idempotent_per_source_and_message_id(send):
    first = send(msg(ids={"email": "i@example.com"}, mid="same"), msg(ids={"email": "i@example.com"}, mid="same"))
    assert [x.status for x in first.results] == ["accepted", "duplicate"]
    again = send(msg(ids={"email": "i@example.com"}, mid="same"))
    assert again.results[0].status == "duplicate"
    from cdp.models import Event

    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_identifier_of_an_erased_profile_is_suppressed(send):
    send(msg(ids={"email": "erased@example.com"}))
    Profile.objects.update(status=ProfileStatus.ERASED)
    r = send(msg(ids={"email": "erased@example.com", "phone": "13722223333"}))
    assert r.results[0].status == "suppressed"
    assert Identifier.objects.count() == 1
