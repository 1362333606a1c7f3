"""Compliance operations over the API (issue 10): roles, error bodies, audit, the breach form."""

from __future__ import annotations

import pytest

from consent.models import Purpose
from privacy.audit.models import AuditEntry

pytestmark = [pytest.mark.django_db]


def test_recipients_crud_for_compliance_only(make_client, consent_purposes):
    officer = make_client("compliance")
    body = {
        "name": "SMS gateway",
        "contact": "ops@gw.example",
        "role": "processor",
        "country": "CN",
        "purposes": ["marketing_sms"],
    }
    assert make_client("marketing").post("/api/v1/recipients", body, format="json").status_code == 403
    created = officer.post("/api/v1/recipients", body, format="json")
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    assert created.json()["abroad"] is False
    bad = officer.post("/api/v1/recipients", {**body, "name": "HQ", "country": "DE"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["path"] == "$.transfer_mechanism"
    dup = officer.post("/api/v1/recipients", body, format="json")
    assert dup.status_code == 400 and dup.json()["error"]["details"]["path"] == "$.name"
    patched = officer.patch(f"/api/v1/recipients/{rid}", {"contact": "dpo@gw.example"}, format="json")
    assert patched.status_code == 200 and patched.json()["contact"] == "dpo@gw.example"
    assert officer.delete(f"/api/v1/recipients/{rid}").json()["active"] is False
    assert officer.get("/api/v1/recipients/999999").status_code == 404
    assert AuditEntry.objects.filter(action="recipient.change").count() == 3


def test_breach_register_and_form(make_client):
    officer = make_client("compliance")
    created = officer.post(
        "/api/v1/breaches",
        {"title": "Lost laptop", "discovered_at": "2020-01-01T00:00:00Z", "data_categories": ["contact"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    breach = created.json()
    assert breach["deadline_at"].startswith("2020-01-04T00:00:00") and breach["hours_left"] < 0
    bid = breach["id"]
    patched = officer.patch(f"/api/v1/breaches/{bid}", {"status": "notified", "measures": "wiped"}, format="json")
    assert patched.json()["notified_at"] is not None
    form = officer.get(f"/api/v1/breaches/{bid}/notification-form").json()
    assert form["late"] is True and form["nature"]["data_categories"] == ["contact"]
    assert officer.post("/api/v1/breaches", {"title": ""}, format="json").status_code == 400
    assert make_client("marketing").get("/api/v1/breaches").status_code == 403


def test_activation_over_the_api_needs_an_approved_assessment(make_client, consent_purposes):
    author, approver = make_client("compliance"), make_client("compliance")
    Purpose.objects.filter(code="third_party_sharing").update(active=False)
    refused = author.post("/api/v1/purposes/third_party_sharing/activate")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    created = author.post(
        "/api/v1/assessments", {"purpose": "third_party_sharing", "content": {"risks": "r"}}, format="json"
    )
    assert created.status_code == 201, created.json()
    aid = created.json()["id"]
    assert author.post(f"/api/v1/assessments/{aid}/approve").status_code == 403  # four eyes
    assert approver.post(f"/api/v1/assessments/{aid}/approve").json()["status"] == "approved"
    done = author.post("/api/v1/purposes/third_party_sharing/activate")
    assert done.status_code == 200 and done.json() == {"code": "third_party_sharing", "active": True}


def test_segment_export_to_unregistered_recipient_is_400(make_client, consent_purposes):
    from cdp.services import segments as seg

    client = make_client("marketing")
    sid = client.post(
        "/api/v1/segments",
        {"name": "S", "definition": {"type": "journey_stage", "op": "in", "value": ["purchase"]}},
        format="json",
    ).json()["id"]
    seg.segment_materialise(segment_id=sid)
    response = client.post(
        f"/api/v1/segments/{sid}/exports",
        {"purpose": "marketing_sms", "channel": "sms", "recipient_name": "Unknown vendor"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["path"] == "$.recipient_name"
    assert AuditEntry.objects.filter(action="export.refused", outcome="denied").count() == 1
