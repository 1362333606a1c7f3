"""Bulk import of grants and the demo steps: idempotent, minors skipped, one audit entry."""

from __future__ import annotations

import pytest

from cdp.actor import Actor
from cdp.models import Profile
from consent.demo import seed_consent_purposes, seed_demo_consents
from consent.enforcement import profiles_consented_for
from consent.models import ConsentRecord, ConsentState
from consent.services import ConsentError, consent_import_grants
from privacy.audit.models import AuditEntry
from tests.factories import ProfileFactory, profile_with_traits

pytestmark = pytest.mark.django_db


def test_seed_purposes_is_idempotent():
    seed_consent_purposes()
    assert seed_consent_purposes() == "0 purposes and 0 policy versions created"


def test_import_grants_skips_minors_and_existing():
    seed_consent_purposes()
    adult, minor = ProfileFactory(), profile_with_traits(birth_date="2020-01-01", country="CN")
    actor = Actor.system("import")
    first = consent_import_grants(
        actor=actor, grants=[(adult.id, "analytics"), (minor.id, "analytics")], method="cookie_banner"
    )
    assert first == {"granted": 1, "skipped_existing": 0, "skipped_minor": 1, "skipped_inactive": 0}
    again = consent_import_grants(actor=Actor.system("import"), grants=[(adult.id, "analytics")], method="api")
    assert again["granted"] == 0 and again["skipped_existing"] == 1
    state = ConsentState.objects.get(subject=adult)
    assert state.record.subject_id == adult.id and state.record.policy_text_sha256
    assert set(profiles_consented_for(Profile.objects.all(), purpose="analytics")) == {adult}
    assert AuditEntry.objects.filter(action="consent.grant", object_type="consent_import").count() == 2
    with pytest.raises(ConsentError):
        consent_import_grants(actor=actor, grants=[(adult.id, "nope")], method="api")


def test_demo_consents_step_is_idempotent():
    seed_consent_purposes()
    for _ in range(20):
        ProfileFactory()
    summary = seed_demo_consents(seed=1)
    assert "granted" in summary
    count = ConsentRecord.objects.count()
    assert count > 0
    seed_demo_consents(seed=1)
    assert ConsentRecord.objects.count() == count
