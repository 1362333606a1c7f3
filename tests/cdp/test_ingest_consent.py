"""`consent` messages: a source's cookie banner or POS signature lands in the consent ledger."""

from __future__ import annotations

import pytest

from cdp.demo import seed_traits
from cdp.models import Event, Profile
from consent.enforcement import profiles_consented_for
from consent.models import ConsentRecord

pytestmark = pytest.mark.django_db
URL = "/api/v1/ingest"


def consent_message(mid: str, *, event: str = "granted", email: str = "wang.fang@example.com", **consent):
    body = {"purpose": "marketing_sms", "event": event, "method": "pos_signature", "channel": "sms"}
    body.update(consent)
    return {
        "message_id": mid,
        "type": "consent",
        "timestamp": "2026-11-20T10:00:00Z",
        "identifiers": {"email": email},
        "consent": body,
    }


@pytest.fixture
def pos(make_client, consent_purposes):
    seed_traits()
    return make_client("source", source="store-pos")


def _sms_audience() -> set:
    return set(
        profiles_consented_for(Profile.objects.all(), purpose="marketing_sms", channel="sms").values_list(
            "id", flat=True
        )
    )


def test_a_pos_signature_grants_and_a_later_withdrawal_takes_effect(pos):
    response = pos.post(URL, {"messages": [consent_message("c1", evidence={"signature_ref": "S-77"})]}, format="json")
    assert response.json()["results"][0]["status"] == "accepted", response.content
    profile = Profile.objects.get()
    record = ConsentRecord.objects.get(subject=profile)
    assert (record.event, record.method, record.source) == ("granted", "pos_signature", "store-pos")
    assert _sms_audience() == {profile.id}
    assert Event.objects.get(message_id="c1").type == "consent"

    response = pos.post(URL, {"messages": [consent_message("c2", event="withdrawn")]}, format="json")
    assert response.json()["results"][0]["status"] == "accepted"
    assert _sms_audience() == set()
    assert ConsentRecord.objects.filter(subject=profile).count() == 2  # history kept


def test_a_repeated_message_is_a_duplicate_and_records_nothing_twice(pos):
    for _ in range(2):
        pos.post(URL, {"messages": [consent_message("c1")]}, format="json")
    assert ConsentRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("consent", "code"),
    [
        ({"purpose": "telepathy"}, "unknown_purpose"),
        ({"event": "maybe"}, "invalid_consent"),
        ({"method": "portal_toggle"}, "invalid_consent"),
        ({"policy_version": 0}, "invalid_consent"),
        ({"colour": "blue"}, "invalid_consent"),
    ],
)
def test_bad_consent_is_rejected_alone_and_writes_nothing(pos, consent, code):
    batch = [consent_message("bad", email="bad@example.com", **consent), consent_message("good")]
    results = pos.post(URL, {"messages": batch}, format="json").json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert results[0]["code"] == code
    assert not Event.objects.filter(message_id="bad").exists()
    assert ConsentRecord.objects.count() == 1


def test_a_minor_s_plain_grant_is_refused_by_the_ledger(pos):
    identify = {
        "message_id": "i1",
        "type": "identify",
        "timestamp": "2026-11-20T09:00:00Z",
        "identifiers": {"email": "xiao.ming@example.com"},
        "traits": {"birth_date": "2016-05-01"},
    }
    grant = consent_message("c-minor", email="xiao.ming@example.com")
    results = pos.post(URL, {"messages": [identify, grant]}, format="json").json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["code"] == "guardian_required"
    assert not ConsentRecord.objects.exists()
    assert not Event.objects.filter(message_id="c-minor").exists()  # a corrected retry is not a duplicate
    assert _sms_audience() == set()
