"""The OpenAPI schema generates without warnings and validates; the docs page is served."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/me" in text and "ApiKey" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(anon_client):
    assert anon_client.get("/api/v1/schema/").status_code == 200
    docs = anon_client.get("/api/v1/docs/")
    assert docs.status_code == 200
    # Assets come from the bundled sidecar, not a CDN: the docs work offline.
    assert b"cdn." not in docs.content


@pytest.mark.django_db
def test_health_reports_database_and_broker(anon_client, settings):
    body = anon_client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["mode"] == ("broker" if settings.CELERY_BROKER_URL else "eager")
