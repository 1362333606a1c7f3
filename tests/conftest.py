"""Shared fixtures: API clients per role, actors, and markers that skip cleanly."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from rest_framework.test import APIClient

from api.keys import api_key_create
from cdp.actor import Actor, ActorKind, Role


@contextmanager
def append_only_bypassed(conn=connection) -> Iterator[None]:
    """Switch PostgreSQL triggers off for this session (`session_replication_role = replica`).

    Only a superuser may do this; the tests connect as one, the app's role never does
    (docs/operations.md). Used by the flush below and by tests that tamper with the audit trail.
    """
    if conn.vendor != "postgresql":
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def _flush_past_append_only_triggers() -> None:
    """pytest-django empties tables with TRUNCATE (transaction=True tests, teardown); the audit
    tables' append-only triggers refuse that, so the flush runs with triggers switched off."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush
    if getattr(original, "_bypasses_append_only", False):
        return

    def execute_sql_flush(self, sql_list):
        with append_only_bypassed(self.connection):
            original(self, sql_list)

    execute_sql_flush._bypasses_append_only = True
    DatabaseOperations.execute_sql_flush = execute_sql_flush


_flush_past_append_only_triggers()


def _redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    redis_up = _redis_up()
    for item in items:
        if "redis" in item.keywords and not redis_up:
            item.add_marker(pytest.mark.skip(reason="no Redis on 127.0.0.1:6379"))


@pytest.fixture(autouse=True)
def _mark_postgres(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL points elsewhere)")


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("tests")


@pytest.fixture
def make_actor() -> Callable[..., Actor]:
    def make(role: str = Role.STEWARD, purpose: str = "", actor_id: str = "key:test") -> Actor:
        return Actor(kind=ActorKind.API_KEY, actor_id=actor_id, role=role, purpose=purpose)

    return make


@pytest.fixture
def make_client(db) -> Callable[..., APIClient]:
    """make_client(role, source=...) -> an APIClient sending that role's fresh key.

    The client carries `.api_key` (the model) and `.raw_key` (the plaintext)."""

    def make(role: str = Role.ADMIN, *, source: str = "", name: str = "") -> APIClient:
        if role == Role.SOURCE and not source:
            source = "test-source"
        created = api_key_create(
            actor=Actor.system("tests"), name=name or f"test-{role}", role=role, source_name=source
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.plaintext}")
        client.api_key = created.api_key
        client.raw_key = created.plaintext
        return client

    return make


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def consent_purposes(db) -> None:
    """The seeded purposes and notices (the data migration makes them; a transactional test's
    flush removes them, so seed again, idempotently)."""
    from consent.services import consent_seed_purposes

    consent_seed_purposes()


@pytest.fixture
def kek_ring(settings):
    """kek_ring({1: key, 2: key}, active=2) swaps the process's KEK set for one test.

    privacy.crypto's KMS is rebuilt whenever settings.KEYS changes; the unwrapped-key cache is
    cleared so that every open goes back to the wrapped key in the database.
    """
    import dataclasses

    from privacy.crypto import clear_data_key_cache

    original = settings.KEYS

    def use(keks: dict[int, bytes], *, active: int):
        settings.KEYS = dataclasses.replace(original, keks=dict(keks), kek_active=active)
        clear_data_key_cache()
        return settings.KEYS

    yield use
    clear_data_key_cache()


@pytest.fixture
def analytics_legitimate_interests(db) -> None:
    """Configure the analytics purpose as an EU legitimate-interests purpose (GDPR Art. 6(1)(f)).

    DP tests that are about noise, bounding and budgets use it so that every active,
    unrestricted profile is in the population without a consent grant each; the consent-based
    default is covered by tests/privacy/test_dp_consent.py.
    """
    from consent.models import LegalBasis, Purpose

    Purpose.objects.update_or_create(
        code="analytics",
        defaults={
            "name_en": "Analytics",
            "name_zh": "统计分析",
            "legal_basis": LegalBasis.LEGITIMATE_INTERESTS,
            "jurisdictions": ["gdpr"],
            "data_categories": ["transaction", "survey"],
            "retention_days": 730,
            "active": True,
        },
    )
