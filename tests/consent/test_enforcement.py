"""Enforcement: the queryset filter and the single-subject check other apps call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Profile, ProfileStatus
from consent.enforcement import ConsentRequired, UnknownPurpose, profiles_consented_for, require_processing_allowed
from consent.models import ProcessingRestriction, Purpose
from consent.services import consent_grant, consent_withdraw, policy_publish
from tests.factories import ProfileFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]


@pytest.fixture
def steward() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:steward", role=Role.STEWARD, purpose="consent_management")


def ids(queryset) -> set:
    return set(queryset.values_list("id", flat=True))


def test_processing_without_consent_raises(steward):
    profile = ProfileFactory()
    with pytest.raises(ConsentRequired) as info:
        require_processing_allowed(subject_id=profile.id, purpose="marketing_sms", channel="sms")
    assert isinstance(info.value, PermissionDenied) and info.value.code == "consent_required"
    assert str(profile.id) not in str(info.value)
    consent_grant(actor=steward, subject_id=profile.id, purpose="marketing_sms", method="api")
    require_processing_allowed(subject_id=profile.id, purpose="marketing_sms", channel="sms")


def test_withdrawal_between_two_exports_removes_the_person(steward):
    alice, bob, carol = ProfileFactory(), ProfileFactory(), ProfileFactory()
    for person in (alice, bob):
        consent_grant(actor=steward, subject_id=person.id, purpose="marketing_sms", method="api")
    first = profiles_consented_for(Profile.objects.all(), purpose="marketing_sms", channel="sms")
    assert ids(first) == {alice.id, bob.id}
    consent_withdraw(actor=steward, subject_id=bob.id, purpose="marketing_sms", method="portal_toggle")
    second = profiles_consented_for(Profile.objects.all(), purpose="marketing_sms", channel="sms")
    assert ids(second) == {alice.id}
    assert carol.id not in ids(second)


def test_channel_scopes(steward):
    person = ProfileFactory()
    consent_grant(actor=steward, subject_id=person.id, purpose="personalisation", method="api")  # all channels
    base = Profile.objects.all()
    assert ids(profiles_consented_for(base, purpose="personalisation", channel="app")) == {person.id}
    consent_withdraw(actor=steward, subject_id=person.id, purpose="personalisation", channel="app", method="api")
    assert ids(profiles_consented_for(base, purpose="personalisation", channel="app")) == set()
    assert ids(profiles_consented_for(base, purpose="personalisation", channel="web")) == {person.id}
    # A channel outside the purpose never passes.
    assert ids(profiles_consented_for(base, purpose="marketing_sms", channel="email")) == set()
    # Withdrawing the all-channels scope ends the remaining channel grants too.
    consent_grant(actor=steward, subject_id=person.id, purpose="personalisation", channel="web", method="api")
    consent_withdraw(actor=steward, subject_id=person.id, purpose="personalisation", method="api")
    assert ids(profiles_consented_for(base, purpose="personalisation", channel="web")) == set()


def test_stale_consent_does_not_pass(steward):
    person = ProfileFactory()
    consent_grant(actor=steward, subject_id=person.id, purpose="third_party_sharing", method="api")
    require_processing_allowed(subject_id=person.id, purpose="third_party_sharing")
    compliance = Actor(kind=ActorKind.API_KEY, actor_id="key:c", role=Role.COMPLIANCE)
    policy_publish(actor=compliance, purpose="third_party_sharing", texts={"en": "New partners."}, material=True)
    with pytest.raises(ConsentRequired):
        require_processing_allowed(subject_id=person.id, purpose="third_party_sharing")


@pytest.mark.parametrize(("kind", "scope_all"), [("restriction", True), ("objection", False)])
def test_restriction_and_objection_exclude(steward, kind, scope_all):
    person = ProfileFactory()
    consent_grant(actor=steward, subject_id=person.id, purpose="analytics", method="api")
    contract = Purpose.objects.create(code="order_fulfilment", name_en="Orders", name_zh="订单", legal_basis="contract",
                                      jurisdictions=["pipl", "gdpr"], retention_days=365)  # fmt: skip
    base = Profile.objects.all()
    assert ids(profiles_consented_for(base, purpose="order_fulfilment")) == {person.id}  # no consent needed
    restriction = ProcessingRestriction.objects.create(
        subject=person, kind=kind, purpose=None if scope_all else Purpose.objects.get(code="analytics")
    )
    assert ids(profiles_consented_for(base, purpose="analytics")) == set()
    with pytest.raises(ConsentRequired):
        require_processing_allowed(subject_id=person.id, purpose="analytics")
    expected = set() if scope_all else {person.id}
    assert ids(profiles_consented_for(base, purpose="order_fulfilment")) == expected
    restriction.active = False
    restriction.save()
    assert ids(profiles_consented_for(base, purpose="analytics")) == {person.id}
    assert contract.pk


def test_inactive_profiles_and_unknown_purposes(steward):
    person = ProfileFactory()
    consent_grant(actor=steward, subject_id=person.id, purpose="analytics", method="api")
    Profile.objects.filter(pk=person.pk).update(status=ProfileStatus.ERASED)
    assert ids(profiles_consented_for(Profile.objects.all(), purpose="analytics")) == set()
    with pytest.raises(UnknownPurpose):
        profiles_consented_for(Profile.objects.all(), purpose="mind_reading")


def test_at_evaluates_history(steward):
    person = ProfileFactory()
    now = timezone.now()
    consent_grant(
        actor=steward, subject_id=person.id, purpose="analytics", method="api", occurred_at=now - timedelta(days=3)
    )
    consent_withdraw(actor=steward, subject_id=person.id, purpose="analytics", method="api",
                     occurred_at=now - timedelta(days=1))  # fmt: skip
    base = Profile.objects.all()
    assert ids(profiles_consented_for(base, purpose="analytics", at=now - timedelta(days=2))) == {person.id}
    assert ids(profiles_consented_for(base, purpose="analytics", at=now)) == set()
    assert ids(profiles_consented_for(base, purpose="analytics")) == set()


def test_filter_composes_with_the_callers_queryset(steward):
    people = [ProfileFactory() for _ in range(4)]
    for person in people[:3]:
        consent_grant(actor=steward, subject_id=person.id, purpose="analytics", method="api")
    narrowed = Profile.objects.filter(pk__in=[p.id for p in people[1:]])
    result = profiles_consented_for(narrowed, purpose="analytics").order_by("created_at")
    assert ids(result) == {people[1].id, people[2].id}
    assert result.count() == 2


def test_separate_consent_is_needed_even_on_another_basis(steward):
    """Sensitive data (PIPL Art. 29, GDPR Art. 9): a contract basis does not cover it."""
    person = ProfileFactory()
    Purpose.objects.create(code="health_offers", name_en="Health", name_zh="健康", legal_basis="contract",
                           separate_consent="sensitive", jurisdictions=["pipl"], retention_days=90)  # fmt: skip
    from consent.services import policy_publish

    policy_publish(actor=Actor.system("tests"), purpose="health_offers", texts={"en": "We use your health notes."},
                   material=True)  # fmt: skip
    assert ids(profiles_consented_for(Profile.objects.all(), purpose="health_offers")) == set()
    consent_grant(actor=steward, subject_id=person.id, purpose="health_offers", method="api")
    assert ids(profiles_consented_for(Profile.objects.all(), purpose="health_offers")) == {person.id}
