"""The compliance API: audit search, verify, export + manifest, checkpoints, public key, records of
processing; and the staff-only compliance page."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from cdp.actor import Actor, Role
from cdp.models import Channel, Source, TraitDefinition
from consent.models import Purpose
from privacy.audit import AuditAction, Outcome, audit_record
from privacy.audit.checkpoints import public_key_hex
from privacy.audit.models import AuditEntry
from tests.conftest import append_only_bypassed

pytestmark = pytest.mark.django_db
VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "verify_audit_export.py"


@pytest.fixture
def compliance(make_client):
    return make_client(Role.COMPLIANCE)


@pytest.fixture
def subject():
    subject_id = uuid.uuid4()
    steward = Actor(kind="api_key", actor_id="key:steward1", role=Role.STEWARD, purpose="support")
    audit_record(actor=steward, action=AuditAction.PROFILE_READ, subject_id=subject_id, legal_basis="contract")
    audit_record(actor=steward, action=AuditAction.PROFILE_EXPORT, subject_id=subject_id, outcome=Outcome.DENIED)
    audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM)
    return subject_id


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit",
        "/api/v1/audit/export?format=csv",
        "/api/v1/audit/export/manifest?format=csv",
        "/api/v1/audit/checkpoints",
        "/api/v1/records-of-processing",
    ],
)
@pytest.mark.parametrize("role", [Role.MARKETING, Role.STEWARD, Role.ANALYST, Role.ADMIN])
def test_compliance_endpoints_refuse_other_roles(make_client, path, role):
    response = make_client(role).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not AuditEntry.objects.filter(action__in=["audit.search", "audit.export", "ropa.export"]).exists()


def test_verify_refuses_other_roles(make_client):
    assert make_client(Role.STEWARD).post("/api/v1/audit/verify").status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=profile.read", ["profile.read"]),
        ("outcome=denied", ["profile.export"]),
        ("actor=key:steward1", ["profile.read", "profile.export"]),
        ("purpose=support", ["profile.read", "profile.export"]),
        ("actor=key:steward1&outcome=ok", ["profile.read"]),
    ],
)
def test_search_filters(compliance, subject, query, expected):
    response = compliance.get(f"/api/v1/audit?{query}")
    assert response.status_code == 200, response.content
    assert [row["action"] for row in response.json()["results"]] == expected


def test_search_by_subject_and_time_and_the_search_is_audited(compliance, subject):
    body = compliance.get(f"/api/v1/audit?subject={subject}").json()
    assert [r["action"] for r in body["results"]] == ["profile.read", "profile.export"]
    assert body["results"][0]["legal_basis"] == "contract" and len(body["results"][0]["hash"]) == 64
    search = AuditEntry.objects.filter(action="audit.search").last()
    assert search.subject_id == subject and search.details == {"filters": ["subject_id"]}
    assert search.actor_id == f"key:{compliance.api_key.prefix}" and search.role == "compliance"
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert compliance.get("/api/v1/audit", {"since": future}).json()["results"] == []
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert len(compliance.get("/api/v1/audit", {"since": past, "action": "system"}).json()["results"]) == 1


def test_search_paginates_with_a_seq_cursor(compliance):
    for i in range(7):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details={"i": i})
    seen, url = [], "/api/v1/audit?action=system&page_size=3"
    while url:
        body = compliance.get(url).json()
        seen += [row["details"]["i"] for row in body["results"]]
        url = body["next"]
    assert seen == list(range(7))


@pytest.mark.parametrize(
    "query",
    [
        "subject=not-a-uuid",
        "action=profile.peek",
        "outcome=maybe",
        "since=yesterday",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "purpose=has%20space",
    ],
)
def test_bad_search_filters_are_400_and_write_nothing(compliance, query):
    before = AuditEntry.objects.count()
    response = compliance.get(f"/api/v1/audit?{query}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert AuditEntry.objects.count() == before


def test_verify_endpoint_reports_valid_then_the_first_bad_seq(compliance, subject):
    body = compliance.post("/api/v1/audit/verify").json()
    assert body["valid"] is True and body["fault"] == "" and body["checked"] >= 3
    with append_only_bypassed():
        AuditEntry.objects.filter(seq=2).update(purpose="marketing")
    body = compliance.post("/api/v1/audit/verify").json()
    assert (body["valid"], body["fault"], body["first_bad_seq"]) == (False, "modified", 2)
    assert AuditEntry.objects.filter(action="audit.verify").count() == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_streams_and_verifies_offline_with_its_manifest(compliance, subject, tmp_path, fmt):
    response = compliance.get(f"/api/v1/audit/export?format={fmt}")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv" if fmt == "csv" else "application/x-ndjson")
    body = b"".join(response.streaming_content)
    to_seq = int(response["X-Audit-To-Seq"])
    manifest = compliance.get(response["X-Audit-Manifest"]).json()
    assert manifest["to_seq"] == to_seq and manifest["count"] == to_seq
    export = tmp_path / f"audit.{fmt}"
    export.write_bytes(body)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    key = compliance.get("/api/v1/audit/public-key").json()
    assert key["public_key"] == public_key_hex()
    done = subprocess.run(
        [
            sys.executable,
            str(VERIFIER),
            str(export),
            str(tmp_path / "manifest.json"),
            "--public-key",
            key["public_key"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        read = next(row for row in rows if row["action"] == "profile.read")
        assert read["legal_basis"] == "contract" and json.loads(read["details"]) == {}


def test_export_bad_format_and_range_are_400(compliance, subject):
    assert compliance.get("/api/v1/audit/export?format=xml").status_code == 400
    assert compliance.get("/api/v1/audit/export").status_code == 400
    response = compliance.get("/api/v1/audit/export?format=csv&to_seq=2")
    assert response.status_code == 400 and "checkpoint" in response.json()["error"]["details"]["non_field_errors"][0]


def test_checkpoints_are_listed(compliance, subject):
    compliance.get("/api/v1/audit/export?format=jsonl")
    rows = compliance.get("/api/v1/audit/checkpoints").json()["results"]
    head = AuditEntry.objects.filter(action="system").get().seq  # the last entry before the export
    assert [r["seq"] for r in rows] == [head] and rows[0]["public_key"] == public_key_hex()


@pytest.fixture
def registry():
    Source.objects.create(name="wechat-mini", channel=Channel.MINI_PROGRAM)
    Source.objects.create(name="web-shop", channel=Channel.WEB)
    TraitDefinition.objects.create(key="health_notes", data_type="string", sensitive=True, data_category="health")
    TraitDefinition.objects.create(key="name", data_type="string", data_category="identity")
    Purpose.objects.create(
        code="health-offers",
        name_en="Health offers",
        name_zh="健康优惠",
        legal_basis="consent",
        jurisdictions=["pipl", "gdpr"],
        data_categories=["health", "identity"],
        channels=["mini_program"],
        retention_days=365,
        recipients=["SMS provider"],
        separate_consent="sensitive",
    )
    Purpose.objects.create(
        code="orders",
        name_en="Order fulfilment",
        name_zh="订单履行",
        legal_basis="contract",
        jurisdictions=["pipl"],
        data_categories=["identity"],
        retention_days=1825,
    )


def test_records_of_processing_json(compliance, registry):
    response = compliance.get("/api/v1/records-of-processing")
    assert response.status_code == 200
    records = {r["purpose"]: r for r in response.json()["records"]}
    health = records["health-offers"]
    assert health["legal_basis"] == "consent" and health["separate_consent"] == "sensitive"
    assert health["sensitive_traits"] == ["trait:health_notes"] and health["involves_sensitive_data"] is True
    assert health["sources"] == ["wechat-mini"] and health["recipients"] == ["SMS provider"]
    assert health["retention_days"] == 365 and health["name_zh"] == "健康优惠"
    orders = records["orders"]
    assert orders["sources"] == ["web-shop", "wechat-mini"] and orders["involves_sensitive_data"] is False
    entry = AuditEntry.objects.filter(action="ropa.export").last()
    # Every purpose is listed, the seeded ones (consent's data migration) included.
    assert entry.details == {"format": "json", "purposes": Purpose.objects.count()}
    assert len(records) == Purpose.objects.count()


def test_records_of_processing_csv(compliance, registry):
    response = compliance.get("/api/v1/records-of-processing?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["purpose"] for r in rows] == sorted(Purpose.objects.values_list("code", flat=True))
    health = next(r for r in rows if r["purpose"] == "health-offers")
    assert health["data_categories"] == "health; identity" and health["retention_days"] == "365"
    assert compliance.get("/api/v1/records-of-processing?format=pdf").status_code == 400


# --- the staff compliance page -------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("officer", password="a-long-password-1", is_staff=True)
    client.force_login(user)
    client.user = user
    return client


def test_compliance_page_needs_a_staff_login(client):
    response = client.get("/compliance/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    user = get_user_model().objects.create_user("clerk", password="a-long-password-1", is_staff=False)
    client.force_login(user)
    assert client.get("/compliance/").status_code == 302
    assert client.get("/compliance/export.csv").status_code == 302


def test_compliance_page_shows_chart_verification_and_links(staff_client, subject):
    staff_client.post("/compliance/verify")
    page = staff_client.get("/compliance/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html and "<rect" in html and "profile.read" in html
    assert "Valid" in html and "/compliance/export.csv" in html and "/compliance/records-of-processing.json" in html
    assert "http://" not in html and "https://" not in html  # no CDN, nothing external
    verify = AuditEntry.objects.filter(action="audit.verify").last()
    assert verify.actor_kind == "staff" and verify.actor_id == f"staff:{staff_client.user.pk}"


def test_compliance_page_downloads_are_audited_and_verify(staff_client, subject, tmp_path):
    export = staff_client.get("/compliance/export.jsonl")
    assert export.status_code == 200
    (tmp_path / "a.jsonl").write_bytes(b"".join(export.streaming_content))
    to_seq = AuditEntry.objects.filter(action="audit.export").last().details["to_seq"]
    manifest = staff_client.get(f"/compliance/export.jsonl.manifest.json?to_seq={to_seq}")
    (tmp_path / "a.jsonl.manifest.json").write_bytes(manifest.content)
    done = subprocess.run(
        [sys.executable, str(VERIFIER), str(tmp_path / "a.jsonl"), str(tmp_path / "a.jsonl.manifest.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert staff_client.get("/compliance/records-of-processing.csv").status_code == 200
    assert staff_client.get("/compliance/export.xml").status_code == 404
    assert AuditEntry.objects.filter(actor_kind="staff", action="ropa.export").count() == 1
