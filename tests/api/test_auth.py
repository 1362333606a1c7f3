"""API-key authentication and role checks."""

from __future__ import annotations

import pytest
from django.db import connection

from api.keys import api_key_revoke
from api.models import ApiKey
from cdp.actor import Actor, Role
from privacy.audit.models import AuditEntry

API_ROLES = [Role.SOURCE, Role.MARKETING, Role.ANALYST, Role.STEWARD, Role.COMPLIANCE, Role.ADMIN]


def _assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.django_db
def test_valid_key_authenticates_and_records_last_use(make_client):
    client = make_client(Role.STEWARD)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "name": "test-steward",
        "role": "steward",
        "prefix": client.api_key.prefix,
        "source": None,
    }
    client.api_key.refresh_from_db()
    assert client.api_key.last_used_at is not None


@pytest.mark.django_db
def test_missing_key_is_401(anon_client):
    response = anon_client.get("/api/v1/me")
    _assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer cdp_000000000000_wrongsecret",
        "Bearer not-a-key",
        "Token cdp_abc_def",
        "Bearer ",
    ],
)
def test_wrong_or_malformed_key_is_401_and_audited(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/v1/me")
    _assert_error(response, 401, "authentication_failed")
    entry = AuditEntry.objects.filter(action="auth.denied").last()
    assert entry is not None and entry.outcome == "denied"


@pytest.mark.django_db
def test_right_prefix_wrong_secret_is_401(make_client, anon_client):
    client = make_client(Role.ADMIN)
    prefix = client.api_key.prefix
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer cdp_{prefix}_{'x' * 43}")
    _assert_error(anon_client.get("/api/v1/me"), 401, "authentication_failed")


@pytest.mark.django_db
def test_revoked_key_is_401(make_client):
    client = make_client(Role.MARKETING)
    assert client.get("/api/v1/me").status_code == 200
    api_key_revoke(actor=Actor.system("tests"), prefix=client.api_key.prefix)
    _assert_error(client.get("/api/v1/me"), 401, "authentication_failed")


@pytest.mark.django_db
def test_key_is_not_recoverable_from_the_database(make_client):
    client = make_client(Role.ANALYST)
    secret = client.raw_key.split("_", 2)[2]
    row = ApiKey.objects.values().get(pk=client.api_key.pk)
    assert all(secret not in str(value) for value in row.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_apikey")
        dump = repr(cursor.fetchall())
    assert secret not in dump
    assert client.raw_key not in dump


@pytest.mark.django_db
@pytest.mark.parametrize("role", API_ROLES)
def test_me_reports_each_role(make_client, role):
    response = make_client(role).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["role"] == role


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r for r in API_ROLES if r != Role.ADMIN])
def test_admin_only_endpoint_refuses_other_roles_and_audits(make_client, role):
    response = make_client(role).get("/api/v1/keys")
    _assert_error(response, 403, "permission_denied")
    entry = AuditEntry.objects.filter(action="permission.denied").last()
    assert entry.role == role and entry.outcome == "denied"


@pytest.mark.django_db
def test_admin_creates_lists_and_revokes_keys_over_the_api(make_client, anon_client):
    admin = make_client(Role.ADMIN)
    created = admin.post("/api/v1/keys", {"name": "pos-berlin", "role": "source", "source": "pos-berlin"})
    assert created.status_code == 201, created.content
    raw = created.json()["key"]
    listing = admin.get("/api/v1/keys").json()
    assert all("key" not in row and "key_hash" not in row for row in listing["results"])
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert anon_client.get("/api/v1/me").json()["source"] == "pos-berlin"
    assert admin.delete(f"/api/v1/keys/{created.json()['prefix']}").status_code == 200
    assert anon_client.get("/api/v1/me").status_code == 401
    _assert_error(admin.delete("/api/v1/keys/nosuchprefix"), 404, "not_found")


@pytest.mark.django_db
def test_source_key_without_source_is_a_400(make_client):
    response = make_client(Role.ADMIN).post("/api/v1/keys", {"name": "x", "role": "source"})
    _assert_error(response, 400, "invalid")
    assert "source" in str(response.json()["error"]["details"])
