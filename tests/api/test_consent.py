"""Consent API: purposes, a subject's consents, evidence export and portal links."""

from __future__ import annotations

import csv
import io

import pytest

from cdp.actor import Role
from consent.models import ConsentRecord, PortalLink
from privacy.audit.models import AuditEntry
from tests.factories import ProfileFactory, profile_with_traits

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]

PURPOSE = {"HTTP_X_PURPOSE": "consent_management"}


def grant(client, subject_id, **overrides):
    body = {"purpose": "marketing_sms", "event": "granted", "method": "cookie_banner"} | overrides
    return client.post(f"/api/v1/subjects/{subject_id}/consents", body, format="json", **PURPOSE)


def test_purposes_for_any_authenticated_key(make_client, anon_client):
    assert anon_client.get("/api/v1/purposes").status_code == 401
    body = make_client(Role.MARKETING).get("/api/v1/purposes").json()
    by_code = {p["code"]: p for p in body}
    assert by_code["cross_border_transfer"]["separate_consent"] == "cross_border"
    languages = {p["language"] for p in by_code["marketing_sms"]["current_policy"]}
    assert languages == {"en", "zh-hans"}
    assert len(by_code["marketing_sms"]["current_policy"][0]["text_sha256"]) == 64


def test_record_and_read_consent(make_client):
    steward = make_client(Role.STEWARD)
    profile = ProfileFactory()
    created = grant(
        steward,
        profile.id,
        ip_address="198.51.100.7",
        user_agent="Mozilla/5.0 test",
        evidence={"banner_id": "home-2026"},
        source="web-shop",
    )
    assert created.status_code == 201, created.json()
    record = created.json()
    assert record["event"] == "granted" and record["policy_version"] == 1
    assert "198.51.100.7" not in created.content.decode() and len(record["ip_hash"]) == 64
    assert grant(steward, profile.id, event="withdrawn").status_code == 201

    read = steward.get(f"/api/v1/subjects/{profile.id}/consents", **PURPOSE)
    assert read.status_code == 200
    states = {p["purpose"]: p["state"] for p in read.json()["purposes"]}
    assert states["marketing_sms"] == "withdrawn" and states["analytics"] == "not_set"
    assert [r["event"] for r in read.json()["history"]] == ["granted", "withdrawn"]
    actions = list(AuditEntry.objects.filter(subject_id=profile.id).values_list("action", flat=True))
    assert actions == ["consent.grant", "consent.withdraw", "consent.read"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"purpose": "nope"}, 400, "unknown_purpose"),
        ({"event": "maybe"}, 400, "invalid"),
        ({"channel": "email"}, 400, "invalid_channel"),
        ({"evidence": {"email": "a@example.com"}}, 400, "invalid_evidence"),
        ({"ip_address": "not-an-ip"}, 400, "invalid"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(make_client, body, status, code):
    profile = ProfileFactory()
    response = grant(make_client(Role.STEWARD), profile.id, **body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not ConsentRecord.objects.exists()


def test_minor_needs_guardian_over_the_api(make_client):
    steward = make_client(Role.STEWARD)
    profile = profile_with_traits(birth_date="2019-06-01", country="CN")
    refused = grant(steward, profile.id)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "guardian_required"
    ok = grant(steward, profile.id, event="guardian_granted", evidence={"guardian_reference": "form-1"})
    assert ok.status_code == 201


def test_roles_purpose_and_unknown_subject(make_client):
    profile = ProfileFactory()
    assert make_client(Role.MARKETING).get(f"/api/v1/subjects/{profile.id}/consents", **PURPOSE).status_code == 403
    no_purpose = make_client(Role.STEWARD).get(f"/api/v1/subjects/{profile.id}/consents")
    assert no_purpose.status_code == 403 and no_purpose.json()["error"]["code"] == "purpose_required"
    missing = make_client(Role.COMPLIANCE).get(
        "/api/v1/subjects/00000000-0000-0000-0000-000000000000/consents", **PURPOSE
    )
    assert missing.status_code == 404


def test_evidence_export_json_and_csv(make_client):
    steward, compliance = make_client(Role.STEWARD), make_client(Role.COMPLIANCE)
    profile = ProfileFactory()
    grant(steward, profile.id, evidence={"banner_id": "b1"}, user_agent="UA")
    grant(steward, profile.id, purpose="analytics", method="api")
    url = f"/api/v1/subjects/{profile.id}/consents/evidence"
    assert steward.get(url, **PURPOSE).status_code == 403

    as_json = compliance.get(url + "?format=json", **PURPOSE)
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/json")
    records = as_json.json()["records"]
    assert [r["purpose"] for r in records] == ["marketing_sms", "analytics"]
    assert records[0]["evidence"] == {"banner_id": "b1"}

    as_csv = compliance.get(url + "?format=csv", **PURPOSE)
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert len(rows) == 2 and rows[0]["policy_text_sha256"] == records[0]["policy_text_sha256"]
    assert AuditEntry.objects.filter(action="consent.export", subject_id=profile.id).count() == 2

    refused = compliance.get(url + "?format=csv")  # no purpose: JSON error even for CSV
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "purpose_required"


def test_portal_link_is_issued_once_and_hashed(make_client):
    steward = make_client(Role.STEWARD)
    profile = ProfileFactory()
    response = steward.post("/api/v1/portal-links", {"subject_id": str(profile.id), "ttl_minutes": 30}, format="json")
    assert response.status_code == 201
    url = response.json()["url"]
    assert "/portal/open/" in url and str(profile.id) not in url
    token = url.rsplit("/", 1)[1]
    link = PortalLink.objects.get(pk=response.json()["link_id"])
    assert token not in link.token_hash and link.used_at is None
    assert AuditEntry.objects.filter(action="portal.link", subject_id=profile.id).exists()
    assert make_client(Role.COMPLIANCE).post("/api/v1/portal-links", {"subject_id": str(profile.id)}).status_code == 403
    bad = steward.post("/api/v1/portal-links", {"subject_id": str(profile.id), "ttl_minutes": 0}, format="json")
    assert bad.status_code == 400
