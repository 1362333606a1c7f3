"""The portal through Django's test client (no JavaScript): links, session, toggles, requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cdp.actor import Actor
from cdp.demo import seed_traits
from consent.enforcement import profiles_consented_for
from consent.models import ConsentRecord, PortalLink
from consent.services import consent_grant, portal_link_create
from privacy.audit.models import AuditEntry
from privacy.dsar.models import DataSubjectRequest
from tests.factories import profile_with_traits

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]

STEWARD = Actor.system("tests")


@pytest.fixture
def person():
    seed_traits()  # the trait registry maps vault keys to data categories
    profile = profile_with_traits(name="王小明", birth_date="1990-04-01", country="CN")
    consent_grant(
        actor=STEWARD, subject_id=profile.id, purpose="marketing_sms", method="pos_signature", source="store-pos"
    )
    return profile


def open_portal(client: Client, person) -> str:
    issued = portal_link_create(actor=STEWARD, subject_id=person.id)
    response = client.get(issued.path)
    assert response.status_code == 302 and response["Location"] == "/portal/"
    return issued.path


def test_link_opens_once_and_redirects_without_token(person):
    client = Client(enforce_csrf_checks=True)
    path = open_portal(client, person)
    page = client.get("/portal/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Marketing by SMS" in html and "Consent given" in html
    assert "王小明" not in html and "1990-04-01" not in html  # categories, not values
    assert "Demographics" in html
    again = Client().get(path)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    reasons = list(AuditEntry.objects.filter(action="portal.refused").values_list("details", flat=True))
    assert reasons == [{"reason": "used"}]
    assert AuditEntry.objects.filter(action="portal.open", subject_id=person.id, actor_kind="portal").exists()


@pytest.mark.parametrize("case", ["expired", "forged", "unknown"])
def test_bad_links_are_refused_kindly(person, case):
    issued = portal_link_create(actor=STEWARD, subject_id=person.id)
    path = issued.path
    if case == "expired":
        PortalLink.objects.filter(pk=issued.link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "forged":
        path = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    else:
        path = "/portal/open/nonsense"
    response = Client().get(path)
    assert response.status_code == 410
    assert "This link cannot be used" in response.content.decode()
    assert AuditEntry.objects.filter(action="portal.refused").count() == 1
    assert Client().get("/portal/").status_code == 403


def test_withdraw_and_grant_by_toggle(person):
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (portal test)")
    open_portal(client, person)
    response = client.post("/portal/consents", {"purpose": "marketing_sms", "action": "withdraw"})
    assert response.status_code == 302 and response["Location"] == "/portal/#purpose-marketing_sms"
    page = client.get("/portal/").content.decode()
    assert "Saved: you withdrew consent" in page
    record = ConsentRecord.objects.filter(subject=person).latest("id")
    assert record.event == "withdrawn" and record.method == "portal_toggle" and record.actor_kind == "portal"
    assert record.user_agent_hash and record.ip_hash
    assert not profiles_consented_for(type(person).objects.all(), purpose="marketing_sms", channel="sms").exists()
    entry = AuditEntry.objects.get(action="consent.withdraw")
    assert entry.actor_kind == "portal" and entry.actor_id == f"subject:{person.id}"
    client.post("/portal/consents", {"purpose": "marketing_sms", "action": "grant"})
    assert profiles_consented_for(type(person).objects.all(), purpose="marketing_sms", channel="sms").exists()


def test_csrf_is_enforced(person):
    client = Client(enforce_csrf_checks=True)
    open_portal(client, person)
    assert client.post("/portal/consents", {"purpose": "marketing_sms", "action": "withdraw"}).status_code == 403
    assert ConsentRecord.objects.filter(subject=person).count() == 1


def test_minor_sees_guardian_message():
    minor = profile_with_traits(birth_date=(timezone.localdate() - timedelta(days=365 * 10)).isoformat())
    client = Client()
    open_portal(client, minor)
    client.post("/portal/consents", {"purpose": "analytics", "action": "grant"})
    assert "parent or guardian" in client.get("/portal/").content.decode()
    assert not ConsentRecord.objects.filter(subject=minor).exists()


def test_copy_and_erasure_requests_are_received(person):
    client = Client()
    open_portal(client, person)
    client.post("/portal/requests", {"type": "access"})
    client.post("/portal/requests", {"type": "erasure"})
    client.post("/portal/requests", {"type": "rectification"})  # not offered by the portal
    requests = DataSubjectRequest.objects.filter(subject=person).order_by("id")
    assert [(r.type, r.channel, r.status, r.jurisdiction) for r in requests] == [
        ("access", "portal", "received", "pipl"),
        ("erasure", "portal", "received", "pipl"),
    ]
    assert requests[0].due_at > requests[0].received_at + timedelta(days=18)  # 15 working days
    assert "Received" in client.get("/portal/").content.decode()
    assert AuditEntry.objects.filter(action="dsar.create", actor_kind="portal").count() == 2


def test_language_switch_and_session_expiry(person, settings):
    client = Client()
    open_portal(client, person)
    client.post("/portal/language", {"language": "zh-hans", "next": "/portal/"})
    page = client.get("/portal/").content.decode()
    assert "短信营销" in page and "您的隐私选择" in page and 'lang="zh-Hans"' in page
    session = client.session
    session["portal_expires"] = 0
    session.save()
    assert client.get("/portal/").status_code == 403


def test_logout_ends_the_session(person):
    client = Client()
    open_portal(client, person)
    client.post("/portal/logout")
    assert client.get("/portal/").status_code == 403
    assert AuditEntry.objects.filter(action="portal.close", subject_id=person.id).exists()
