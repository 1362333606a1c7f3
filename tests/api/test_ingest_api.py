"""POST /api/v1/ingest: per-message results, and a table of bad input that writes nothing."""

from __future__ import annotations

import json

import pytest

from api.keys import api_key_revoke
from cdp.actor import Actor
from cdp.demo import seed_traits
from cdp.models import Event, Profile
from identity.models import Identifier
from privacy.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
URL = "/api/v1/ingest"


def message(mid="m1", **overrides):
    body = {
        "message_id": mid,
        "type": "identify",
        "timestamp": "2026-11-23T10:00:00Z",
        "identifiers": {"email": "li.na@example.com"},
        "traits": {"name": "李娜"},
    }
    body.update(overrides)
    return body


@pytest.fixture
def source_client(make_client):
    seed_traits()
    return make_client("source", source="web-shop")


def nothing_written():
    return not Event.objects.exists() and not Profile.objects.exists() and not Identifier.objects.exists()


def test_batch_answers_a_result_per_message(source_client):
    body = {
        "messages": [
            message("a"),
            message("b", identifiers={"email": "nope"}),
            message("c", type="track", event="purchase", properties={"amount": 12.5}),
            message("a"),
        ]
    }
    response = source_client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert [r["status"] for r in data["results"]] == ["accepted", "rejected", "accepted", "duplicate"]
    assert data["results"][1]["code"] == "invalid_email"
    assert data["counts"] == {"accepted": 2, "rejected": 1, "duplicate": 1}
    assert Event.objects.count() == 2 and Profile.objects.count() == 1
    assert "li.na" not in response.content.decode()
    entry = AuditEntry.objects.get(action="ingest.batch")
    assert entry.details["batch"] == data["batch_id"]
    # Retrying the same batch is safe.
    again = source_client.post(URL, body, format="json").json()
    assert again["counts"] == {"duplicate": 3, "rejected": 1}
    assert Event.objects.count() == 2


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({k: v for k, v in message().items() if k != "message_id"}, "missing_message_id"),
        (message(identifiers={"email": "li.na@"}), "invalid_email"),
        (message(identifiers={"phone": "12345"}), "invalid_phone"),
        (message(identifiers={"device_id": "null"}), "junk_identifier"),
        (message(identifiers={}), "missing_identifiers"),
        (message(type="teleport"), "unknown_type"),
        (message(type="consent"), "missing_consent"),
        (message(timestamp="yesterday"), "invalid_timestamp"),
        (message(traits={"shoe_size": 42}), "unknown_trait"),
        (message(traits={"city": "Atlantis"}), "invalid_value"),
        (message(type="track", event="survey_response", properties={"score": 11}), "out_of_bounds"),
        (message(type="track"), "missing_event"),
        (message(type="alias"), "alias_needs_two"),
        (message(channel="telepathy"), "invalid_channel"),
        (message(channel=["web"]), "invalid_channel"),
        (message(traits={"name": "Li\x00Na"}), "invalid_text"),
        (message(mid="m\x00"), "invalid_text"),
        ("just a string", "invalid_message"),
    ],
)
def test_bad_message_is_rejected_alone_with_its_code(source_client, raw, code):
    response = source_client.post(URL, {"messages": [raw]}, format="json")
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["status"] == "rejected" and result["code"] == code and result["reason"]
    assert nothing_written()


def test_a_lone_surrogate_is_rejected_alone(source_client):
    """JSON may spell a lone UTF-16 surrogate ("\\ud800"), which UTF-8 cannot encode: that
    message is rejected, its neighbour is accepted."""
    good = json.dumps(message("ok"))
    bad = json.dumps(message("bad")).replace('"\\u674e\\u5a1c"', '"\\ud800"')
    assert "ud800" in bad
    response = source_client.generic("POST", URL, f'{{"messages": [{bad}, {good}]}}', content_type="application/json")
    assert response.status_code == 200, response.content
    assert [(r["status"], r.get("code")) for r in response.json()["results"]] == [
        ("rejected", "invalid_text"),
        ("accepted", None),
    ]


def bad_envelope(case: str, client, settings, make_client, anon_client):
    """(client, body) for one row of the bad-request table; shared with the queued path."""
    body = json.dumps({"messages": [message()]})
    if case == "malformed_json":
        body = '{"messages": [ {"message_id": '
    elif case == "over_size":
        settings.CDP_INGEST_MAX_BYTES = 2048
        body = json.dumps({"messages": [message(f"m{i}") for i in range(40)]})
    elif case == "too_many":
        settings.CDP_INGEST_MAX_MESSAGES = 3
        body = json.dumps({"messages": [message(f"m{i}") for i in range(4)]})
    elif case == "empty":
        body = json.dumps({"messages": []})
    elif case == "wrong_key":
        client.credentials(HTTP_AUTHORIZATION="Bearer cdp_abc_wrongsecret")
    elif case == "revoked_key":
        api_key_revoke(actor=Actor.system("tests"), prefix=client.api_key.prefix)
    elif case == "other_role":
        client = make_client("steward")
    elif case == "no_key":
        client = anon_client
    return client, body


BAD_REQUESTS = [
    ("malformed_json", 400, "malformed_request"),
    ("over_size", 413, "payload_too_large"),
    ("too_many", 413, "payload_too_large"),
    ("empty", 400, "invalid"),
    ("wrong_key", 401, "authentication_failed"),
    ("revoked_key", 401, "authentication_failed"),
    ("other_role", 403, "permission_denied"),
    ("no_key", 401, "not_authenticated"),
]


@pytest.mark.parametrize(("case", "status", "code"), BAD_REQUESTS)
def test_bad_request_is_refused_whole_and_writes_nothing(
    case, status, code, source_client, make_client, settings, anon_client
):
    client, body = bad_envelope(case, source_client, settings, make_client, anon_client)
    response = client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert nothing_written()
    assert not AuditEntry.objects.filter(action="ingest.batch").exists()
