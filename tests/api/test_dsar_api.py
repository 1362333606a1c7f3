"""Done when: a request made in the portal is verified, worked and completed by a compliance
officer through the API, and the audit trail proves each step."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from django.test import Client, TestCase

from cdp.actor import Actor, Role
from cdp.demo import seed_traits
from consent.services import consent_grant, portal_link_create
from privacy.audit.models import AuditEntry
from privacy.dsar.models import DataSubjectRequest
from privacy.dsar.services import dsar_create
from tests.factories import profile_with_traits

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]
SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _celery_eager():
    """Run queued DSAR work in-process even when CELERY_BROKER_URL points at Redis (no worker
    runs in the test process): the same task code a worker would run."""
    from cdp.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def person():
    seed_traits()
    profile = profile_with_traits(name="王小明", birth_date="1990-04-01", country="CN")
    consent_grant(actor=SYSTEM, subject_id=profile.id, purpose="marketing_sms", method="pos_signature", source="pos")
    return profile


def portal_request(person, request_type: str) -> DataSubjectRequest:
    client = Client()
    issued = portal_link_create(actor=SYSTEM, subject_id=person.id)
    assert client.get(issued.path).status_code == 302
    client.post("/portal/requests", {"type": request_type})
    return DataSubjectRequest.objects.filter(subject=person, type=request_type).latest("id")


def test_portal_request_is_worked_to_completion_through_the_api(person, make_client):
    request = portal_request(person, "access")
    officer = make_client(Role.COMPLIANCE)
    queue = officer.get("/api/v1/dsar?status=received")
    assert queue.status_code == 200
    [row] = queue.json()
    assert row["id"] == request.pk and row["channel"] == "portal" and row["days_left"] >= 18
    url = f"/api/v1/dsar/{request.pk}/transitions"
    assert officer.post(url, {"action": "assign"}, format="json").json()["assignee"].startswith("key:")
    verified = officer.post(url, {"action": "verify", "verification_method": "portal_link"}, format="json")
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = officer.post(url, {"action": "start"}, format="json")
    assert started.status_code == 200
    detail = officer.get(f"/api/v1/dsar/{request.pk}").json()
    assert detail["status"] == "completed" and detail["result"]["package_sha256"]
    download = officer.get(f"/api/v1/dsar/{request.pk}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    body = b"".join(download) if hasattr(download, "streaming_content") else download.content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        data = json.loads(archive.read("data.json"))
    assert {t["key"]: t["value"] for t in data["traits"]}["name"] == "王小明"
    again = officer.get(f"/api/v1/dsar/{request.pk}/download")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    # the audit trail proves every step, in order
    steps = [
        (e.action, (e.details or {}).get("action", ""))
        for e in AuditEntry.objects.filter(object_type="dsar", object_id=str(request.pk)).order_by("seq")
    ]
    assert steps == [
        ("dsar.create", ""),
        ("dsar.transition", "assign"),
        ("dsar.transition", "verify"),
        ("dsar.transition", "start"),
        ("profile.export", ""),
        ("dsar.transition", "complete"),
        ("dsar.download", ""),
    ]
    create = AuditEntry.objects.get(action="dsar.create", object_id=str(request.pk))
    assert create.actor_kind == "portal"


def test_erasure_from_the_portal_and_rejection_with_reason(person, make_client):
    erasure = portal_request(person, "erasure")
    officer = make_client(Role.COMPLIANCE)
    url = f"/api/v1/dsar/{erasure.pk}/transitions"
    officer.post(url, {"action": "verify", "verification_method": "portal_link"}, format="json")
    with TestCase.captureOnCommitCallbacks(execute=True):
        officer.post(url, {"action": "start"}, format="json")
    body = officer.get(f"/api/v1/dsar/{erasure.pk}").json()
    assert body["status"] == "completed" and body["result"]["kept_under_legal_obligation"]
    person.refresh_from_db()
    assert person.status == "erased"
    other = profile_with_traits(name="Li Lei")
    created = officer.post("/api/v1/dsar", {"type": "access", "subject_id": str(other.id)}, format="json")
    assert created.status_code == 201 and created.json()["jurisdiction"] == "pipl"
    pk = created.json()["id"]
    missing_reason = officer.post(f"/api/v1/dsar/{pk}/transitions", {"action": "reject"}, format="json")
    assert missing_reason.status_code == 400 and missing_reason.json()["error"]["code"]
    rejected = officer.post(
        f"/api/v1/dsar/{pk}/transitions", {"action": "reject", "reason": "identity not proven"}, format="json"
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "identity not proven"
    wrong_state = officer.post(f"/api/v1/dsar/{pk}/transitions", {"action": "start"}, format="json")
    assert wrong_state.status_code == 409


def test_queue_filters_and_bad_input(person, make_client):
    officer = make_client(Role.COMPLIANCE)
    old = dsar_create(
        actor=SYSTEM,
        subject_id=person.id,
        request_type="erasure",
        jurisdiction="gdpr",
        channel="staff",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    fresh = dsar_create(actor=SYSTEM, subject_id=person.id, request_type="access", jurisdiction="pipl", channel="api")
    assert [r["id"] for r in officer.get("/api/v1/dsar?overdue=true").json()] == [old.pk]
    assert officer.get("/api/v1/dsar?overdue=true").json()[0]["overdue"] is True
    assert [r["id"] for r in officer.get("/api/v1/dsar?type=access").json()] == [fresh.pk]
    assert [r["id"] for r in officer.get("/api/v1/dsar?due_before=2026-03-01").json()] == [old.pk]
    assert [r["id"] for r in officer.get("/api/v1/dsar?due_after=2026-03-01").json()] == [fresh.pk]
    assert officer.get("/api/v1/dsar?status=done").status_code == 400
    assert officer.get("/api/v1/dsar?due_before=tomorrow").status_code == 400
    count = DataSubjectRequest.objects.count()
    bad = officer.post(
        "/api/v1/dsar", {"type": "access", "identifier": {"type": "email", "value": "x@nobody.io"}}, format="json"
    )
    assert bad.status_code == 400 and DataSubjectRequest.objects.count() == count
    assert officer.post("/api/v1/dsar", {"type": "access"}, format="json").status_code == 400
    assert make_client(Role.MARKETING).get("/api/v1/dsar").status_code == 403
    assert officer.get("/api/v1/dsar/999999").status_code == 404


def test_compliance_page_shows_the_queue_with_overdue_highlighted(person, client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("officer", password="a-long-password-1", is_staff=True)
    client.force_login(user)
    overdue = dsar_create(
        actor=SYSTEM,
        subject_id=person.id,
        request_type="erasure",
        jurisdiction="gdpr",
        channel="staff",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    dsar_create(actor=SYSTEM, subject_id=person.id, request_type="access", jurisdiction="pipl", channel="api")
    page = client.get("/compliance/").content.decode()
    assert "Data-subject requests" in page
    assert page.count('class="overdue bad"') == 1 and f"<td>{overdue.pk}</td>" in page
    assert "王小明" not in page
