"""Profile 360, lookup, timeline and unmerge through the API: roles, purpose, audit, redirects."""

from __future__ import annotations

import pytest

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Profile, ProfileStatus, Source
from cdp.services.ingest import ingest_batch
from privacy.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
PURPOSE = {"HTTP_X_PURPOSE": "customer_service"}


@pytest.fixture
def merged(db):
    """Two profiles merged by an alias: returns (survivor, absorbed)."""
    seed_traits()
    source = Source.objects.create(name="crm", channel="crm")
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:t", role=Role.SOURCE, source_id=source.pk)
    ts = "2026-01-0{}T00:00:00Z"
    ingest_batch(
        actor=actor,
        messages=[
            {
                "message_id": "1",
                "type": "identify",
                "timestamp": ts.format(1),
                "identifiers": {"email": "wang@example.cn"},
                "traits": {"name": "王伟", "city": "Beijing"},
            },
        ],
    )
    ingest_batch(
        actor=actor,
        messages=[
            {
                "message_id": "2",
                "type": "track",
                "timestamp": ts.format(2),
                "identifiers": {"phone": "+8613711112222"},
                "event": "purchase",
                "properties": {"amount": 99},
            },
            {
                "message_id": "3",
                "type": "alias",
                "timestamp": ts.format(3),
                "identifiers": {"email": "wang@example.cn", "phone": "13711112222"},
            },
        ],
    )
    survivor = Profile.objects.get(status=ProfileStatus.ACTIVE)
    absorbed = Profile.objects.get(status=ProfileStatus.MERGED)
    return survivor, absorbed


def test_profile_360_needs_a_purpose_and_is_audited(make_client, merged):
    survivor, _ = merged
    steward = make_client("steward")
    denied = steward.get(f"/api/v1/profiles/{survivor.id}")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "purpose_required"
    response = steward.get(f"/api/v1/profiles/{survivor.id}", **PURPOSE)
    assert response.status_code == 200
    body = response.json()
    assert body["traits"] == {"name": "王伟"} and body["attributes"] == {"city": "Beijing"}
    assert {i["type"]: i["value"] for i in body["identifiers"]} == {
        "email": "wang@example.cn",
        "phone": "+8613711112222",
    }
    assert body["merges"][0]["rule"] == "alias" and body["journey_stage"] == "purchase"
    entry = AuditEntry.objects.get(action="profile.read")
    assert entry.subject_id == survivor.id and entry.purpose == "customer_service"
    assert "王伟" not in str(entry.details)


def test_merged_id_redirects_to_survivor(make_client, merged):
    survivor, absorbed = merged
    response = make_client("compliance").get(f"/api/v1/profiles/{absorbed.id}?purpose=audit")
    assert response.status_code == 308
    assert response["Location"] == f"/api/v1/profiles/{survivor.id}?purpose=audit"


@pytest.mark.parametrize("role", ["marketing", "analyst", "source", "admin"])
def test_other_roles_cannot_read_profiles(make_client, merged, role):
    survivor, _ = merged
    client = make_client(role, source="s1") if role == "source" else make_client(role)
    assert client.get(f"/api/v1/profiles/{survivor.id}", **PURPOSE).status_code == 403


def test_lookup_prefers_post_and_finds_survivor(make_client, merged):
    survivor, _ = merged
    steward = make_client("steward")
    posted = steward.post("/api/v1/profiles/lookup", {"phone": "137 1111 2222"}, format="json", **PURPOSE)
    assert posted.status_code == 200
    assert posted.json()["matches"] == [{"profile_id": str(survivor.id), "matched_by": ["phone"]}]
    got = steward.get("/api/v1/profiles/lookup?email=WANG@example.cn", **PURPOSE)
    assert got.json()["matches"][0]["profile_id"] == str(survivor.id)
    assert steward.post("/api/v1/profiles/lookup", {"email": "x"}, format="json", **PURPOSE).status_code == 400
    assert steward.post("/api/v1/profiles/lookup", {"email": "no@example.cn"}, format="json", **PURPOSE).json() == {
        "matches": []
    }
    assert AuditEntry.objects.filter(action="profile.lookup").count() == 3
    assert make_client("compliance").post("/api/v1/profiles/lookup", {}, format="json", **PURPOSE).status_code == 403


def test_timeline_is_paginated(make_client, merged):
    survivor, _ = merged
    steward = make_client("steward")
    first = steward.get(f"/api/v1/profiles/{survivor.id}/events?page_size=2", **PURPOSE).json()
    assert [e["message_id"] for e in first["results"]] == ["3", "2"]
    assert first["results"][1]["properties"] == {"amount": 99.0}
    second = steward.get(first["next"], **PURPOSE).json()
    assert [e["message_id"] for e in second["results"]] == ["1"]


def test_unmerge_endpoint(make_client, merged):
    survivor, absorbed = merged
    steward = make_client("steward")
    response = steward.post(f"/api/v1/profiles/{absorbed.id}/unmerge", **PURPOSE)
    assert response.status_code == 200, response.content
    assert response.json()["restored"] == str(absorbed.id)
    assert Profile.objects.filter(status=ProfileStatus.ACTIVE).count() == 2
    again = steward.post(f"/api/v1/profiles/{absorbed.id}/unmerge", **PURPOSE)
    assert again.status_code == 409
    assert steward.post(f"/api/v1/profiles/{survivor.id}/unmerge").status_code == 403  # no purpose
