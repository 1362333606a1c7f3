"""Retention purges only what is expired: events past their purposes' retention, and profiles
left with no basis; dry-run changes nothing; both are audited with the counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cdp.actor import Actor
from cdp.models import Event, Profile
from consent.models import Purpose
from consent.services import consent_grant
from identity.models import Identifier
from privacy.audit.models import AuditEntry
from privacy.crypto import KeyShreddedError, traits_open, traits_seal
from privacy.dsar.services import dsar_create
from privacy.retention import retention_periods, retention_purge
from tests.factories import EventFactory, ProfileFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]
SYSTEM = Actor.system("tests")


def old_profile(days: int, **fields) -> Profile:
    profile = ProfileFactory(**fields)
    profile.vault = traits_seal(profile_id=profile.id, traits={"name": "Old Customer"})
    profile.last_seen_at = timezone.now() - timedelta(days=days)
    profile.save()
    return profile


@pytest.fixture
def world():
    now = timezone.now()
    event_days, profile_days = retention_periods()
    assert event_days == 730 and profile_days == 730  # seeded purposes using "transaction"
    keeper = old_profile(10)
    EventFactory(profile=keeper, occurred_at=now - timedelta(days=event_days + 5), message_id="expired-1")
    EventFactory(profile=keeper, occurred_at=now - timedelta(days=event_days - 5), message_id="fresh-1")
    gone = old_profile(profile_days + 30)  # only expired events: left with no basis
    EventFactory(profile=gone, occurred_at=now - timedelta(days=event_days + 40), message_id="expired-2")
    consented = old_profile(profile_days + 30)  # no events but a current grant: kept
    consent_grant(actor=SYSTEM, subject_id=consented.id, purpose="marketing_sms", method="pos_signature", source="pos")
    asked = old_profile(profile_days + 30)  # an open request: kept until it is answered
    dsar_create(actor=SYSTEM, subject_id=asked.id, request_type="access", jurisdiction="pipl", channel="staff")
    recent = old_profile(profile_days - 30)  # no events, no consent, but seen recently: kept
    return {"keeper": keeper, "gone": gone, "consented": consented, "asked": asked, "recent": recent}


def test_dry_run_counts_and_changes_nothing(world):
    events, profiles = Event.objects.count(), list(Profile.objects.values_list("pk", "status"))
    report = retention_purge(actor=SYSTEM, dry_run=True)
    assert (report.events, report.profiles) == (2, 1)
    assert Event.objects.count() == events and list(Profile.objects.values_list("pk", "status")) == profiles
    entry = AuditEntry.objects.filter(action="retention.purge").latest("seq")
    assert entry.details["dry_run"] is True and entry.details["events"] == 2


def test_purge_removes_only_what_is_expired(world):
    report = retention_purge(actor=SYSTEM)
    assert (report.events, report.profiles) == (2, 1)
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["fresh-1"]
    statuses = {name: Profile.objects.get(pk=p.pk).status for name, p in world.items()}
    assert statuses == {
        "keeper": "active",
        "gone": "erased",
        "consented": "active",
        "asked": "active",
        "recent": "active",
    }
    with pytest.raises(KeyShreddedError):
        traits_open(profile_id=world["gone"].id, blob=world["gone"].vault)
    assert traits_open(profile_id=world["keeper"].id, blob=Profile.objects.get(pk=world["keeper"].pk).vault)
    assert not Identifier.objects.filter(profile=world["gone"]).exists()
    # idempotent: nothing more is expired
    again = retention_purge(actor=SYSTEM)
    assert (again.events, again.profiles) == (0, 0)


def test_no_period_no_automatic_purge(world, settings):
    settings.CDP_RETENTION_EVENT_CATEGORY = "no-such-category"
    assert retention_purge(actor=SYSTEM).events == 0


def test_shorter_registry_period_purges_more(world):
    for purpose in Purpose.objects.all():
        if "transaction" in purpose.data_categories:
            purpose.retention_days = 7
            purpose.save()
    report = retention_purge(actor=SYSTEM, dry_run=True)
    assert report.event_retention_days == 7 and report.events == 3


def test_purge_expired_command(world, capsys):
    call_command("purge_expired", "--dry-run")
    out = capsys.readouterr().out
    assert '"dry_run": true' in out and '"events": 2' in out
    call_command("purge_expired")
    assert Event.objects.count() == 1
