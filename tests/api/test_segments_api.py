"""The segments API: CRUD (marketing only), validation paths, DP estimates, exports end to end."""

from __future__ import annotations

import pytest

from cdp.models import Segment, SegmentExport
from cdp.services import segments as svc
from consent.services import consent_grant
from identity.models import Identifier
from privacy.crypto import seal
from privacy.dp.models import BudgetAccount
from tests.factories import ProfileFactory, dp_registry, registered_recipient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]

SHANGHAI = {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"}
EXACT_COUNT_KEYS = {"members", "size", "count", "row_count", "member_count"}


@pytest.fixture
def people(db):
    from django.utils import timezone

    from cdp.actor import Actor, ActorKind, Role

    dp_registry()
    steward = Actor(kind=ActorKind.API_KEY, actor_id="key:st", role=Role.STEWARD, purpose="consent_management")
    out = []
    for i, city in enumerate(["Shanghai", "Shanghai", "Beijing"]):
        person = ProfileFactory(attributes={"city": city}, journey_stage="purchase")
        now = timezone.now()
        for id_type, value in (("phone", f"+86138000000{i:02d}"), ("email", f"u{i}@example.com")):
            Identifier.objects.create(
                id_type=id_type,
                blind_index=f"{id_type}-{i}",
                sealed_value=seal(subject_id=person.id, field=f"identifier:{id_type}", value=value),
                profile=person,
                origin_profile=person,
                first_seen_at=now,
                last_seen_at=now,
            )
        consent_grant(actor=steward, subject_id=person.id, purpose="marketing_sms", method="api")
        out.append(person)
    return out


def create(client, definition=SHANGHAI, name="Shanghai buyers"):
    return client.post("/api/v1/segments", {"name": name, "definition": definition}, format="json")


def test_marketing_creates_reads_updates_and_deletes(people, make_client, django_capture_on_commit_callbacks):
    client = make_client("marketing")
    with django_capture_on_commit_callbacks() as callbacks:
        response = create(client)
    assert response.status_code == 201, response.json()
    assert len(callbacks) == 1  # the first materialisation is queued on commit
    body = response.json()
    assert body["version"] == 1 and not EXACT_COUNT_KEYS & set(body)
    sid = body["id"]
    detail = client.get(f"/api/v1/segments/{sid}").json()
    assert not EXACT_COUNT_KEYS & set(detail)
    assert client.get("/api/v1/segments").json()[0]["id"] == sid
    patched = client.patch(
        f"/api/v1/segments/{sid}", {"definition": {"type": "journey_stage", "op": "eq", "value": "use"}}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert client.post(f"/api/v1/segments/{sid}/materialize").status_code == 202
    assert client.delete(f"/api/v1/segments/{sid}").status_code == 204
    assert not Segment.objects.exists()


def test_other_roles_are_refused(people, make_client):
    for role in ("analyst", "steward", "source"):
        assert create(make_client(role)).status_code == 403
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"all": [SHANGHAI, {"type": "trait", "key": "city", "op": "gt", "value": 3}]}, "$.definition.all[1].op"),
        ({"type": "trait", "key": "phone", "op": "exists"}, "$.definition.key"),
        ({"type": "event", "name": "purchase", "min_count": 0}, "$.definition.min_count"),
    ],
)
def test_validation_error_carries_the_json_path(people, make_client, definition, path):
    response = create(make_client("marketing"), definition)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["path"] == path
    assert not Segment.objects.exists()


def test_estimate_is_dp_and_charged_to_the_caller(people, make_client):
    client = make_client("marketing")
    sid = create(client).json()["id"]
    response = client.post(
        f"/api/v1/segments/{sid}/estimate", {"epsilon": 0.5, "group_by": ["journey_stage"]}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["epsilon_charged"] == 0.5
    assert all(row["values"]["people"]["error_95"] > 0 for row in body["result"]["rows"])
    assert BudgetAccount.objects.get(scope="analyst", analyst_id=f"key:{client.api_key.prefix}").epsilon_spent == 0.5
    bad = client.post(f"/api/v1/segments/{sid}/estimate", {"epsilon": 50}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["path"] == "$.epsilon"


def test_export_end_to_end(people, make_client, django_capture_on_commit_callbacks):
    client = make_client("marketing")
    sid = create(client).json()["id"]
    svc.segment_materialise(segment_id=sid)
    registered_recipient("SMS vendor")  # issue 10
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/api/v1/segments/{sid}/exports",
            {"purpose": "marketing_sms", "channel": "sms", "recipient_name": "SMS vendor"},
            format="json",
        )
    assert response.status_code == 202, response.json()
    assert len(callbacks) == 1
    export_id = response.json()["id"]
    assert client.get(f"/api/v1/exports/{export_id}").json()["status"] == "pending"
    svc.export_build(export_id=export_id)  # what the worker runs
    status = client.get(f"/api/v1/exports/{export_id}").json()
    assert status["status"] == "ready" and not EXACT_COUNT_KEYS & set(status)
    assert set(status["excluded"]) >= {"value", "error_95", "epsilon"}
    other = make_client("marketing", name="other-marketer")
    assert other.get(f"/api/v1/exports/{export_id}/download").status_code == 403
    assert other.get(f"/api/v1/exports/{export_id}").status_code == 403
    download = client.get(f"/api/v1/exports/{export_id}/download")
    assert download.status_code == 200
    content = download.json()
    assert content["columns"] == ["profile_id", "phone"]
    assert {r["profile_id"] for r in content["rows"]} == {str(people[0].id), str(people[1].id)}
    assert all(set(r) == {"profile_id", "phone"} for r in content["rows"])
    again = client.get(f"/api/v1/exports/{export_id}/download")
    assert again.status_code == 409 and again.json()["error"]["code"] == "export_downloaded"
    assert SegmentExport.objects.get(id=export_id).payload is None


def test_export_request_validation(people, make_client):
    client = make_client("marketing")
    sid = create(client).json()["id"]
    svc.segment_materialise(segment_id=sid)
    response = client.post(
        f"/api/v1/segments/{sid}/exports", {"purpose": "marketing_sms", "channel": "email"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["details"]["path"] == "$.channel"
    assert (
        client.post("/api/v1/segments/999/exports", {"purpose": "x", "channel": "sms"}, format="json").status_code
        == 404
    )
    assert not SegmentExport.objects.exists()
