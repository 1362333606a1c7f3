"""Every API error has the same body: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from rest_framework.settings import api_settings

from cdp.actor import Role
from tests.api.test_auth import _assert_error


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(make_client):
    _assert_error(make_client(Role.ADMIN).get("/api/v1/no/such/thing"), 404, "not_found")


@pytest.mark.django_db
def test_unknown_api_path_without_a_key_is_also_json(anon_client):
    response = anon_client.get("/api/nothing-here")
    _assert_error(response, 404, "not_found")


@pytest.mark.django_db
def test_wrong_method_is_405(make_client):
    _assert_error(make_client(Role.ADMIN).delete("/api/v1/me"), 405, "method_not_allowed")


@pytest.mark.django_db
def test_malformed_json_is_400_and_creates_nothing(make_client):
    from api.models import ApiKey

    client = make_client(Role.ADMIN)
    before = ApiKey.objects.count()
    response = client.generic("POST", "/api/v1/keys", '{"name": "x", "role": ', content_type="application/json")
    _assert_error(response, 400, "malformed_request")
    assert ApiKey.objects.count() == before


@pytest.mark.django_db
def test_invalid_fields_are_400_with_field_details(make_client):
    response = make_client(Role.ADMIN).post("/api/v1/keys", {"name": "", "role": "emperor"})
    _assert_error(response, 400, "invalid")
    assert set(response.json()["error"]["details"]) == {"name", "role"}


@pytest.mark.django_db
def test_wrong_content_type_is_415(make_client):
    response = make_client(Role.ADMIN).generic("POST", "/api/v1/keys", "name=x", content_type="text/plain")
    _assert_error(response, 415, "unsupported_media_type")


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_body_is_413(make_client):
    body = json.dumps({"name": "x" * 5000, "role": "admin"})
    response = make_client(Role.ADMIN).generic("POST", "/api/v1/keys", body, content_type="application/json")
    _assert_error(response, 413, "payload_too_large")


@pytest.mark.django_db
def test_throttled_is_429_with_retry_after(make_client, settings):
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    from django.core.cache import cache

    cache.clear()
    client = make_client(Role.ANALYST)
    codes = [client.get("/api/v1/me").status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200]
    response = client.get("/api/v1/me")
    _assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["details"]["wait_seconds"] > 0
    cache.clear()


@pytest.mark.django_db
@pytest.mark.urls("tests.api.urls_boom")
def test_server_error_is_a_json_500_without_internals(make_client):
    client = make_client(Role.ADMIN)
    client.raise_request_exception = False
    response = client.get("/api/v1/boom", HTTP_X_REQUEST_ID="req-12345678")
    _assert_error(response, 500, "server_error")
    assert "boom" not in response.content.decode()
    assert response.json()["error"]["details"]["request_id"] == "req-12345678"


@pytest.mark.django_db
def test_request_id_is_echoed(anon_client):
    response = anon_client.get("/api/v1/health", HTTP_X_REQUEST_ID="abcdef12-3456")
    assert response["X-Request-ID"] == "abcdef12-3456"
    assert len(anon_client.get("/api/v1/health")["X-Request-ID"]) == 32
