"""On PostgreSQL the audit tables are append-only: triggers refuse UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from cdp.actor import Actor
from privacy.audit import AuditAction, audit_record
from privacy.audit.checkpoints import checkpoint_create
from privacy.audit.models import AuditCheckpoint, AuditEntry
from tests.conftest import append_only_bypassed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def chain():
    actor = Actor.system("tests")
    for i in range(3):
        audit_record(actor=actor, action=AuditAction.SYSTEM, details={"i": i})
    checkpoint_create(actor=actor)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {table} SET hash = hash",
        "DELETE FROM {table} WHERE seq = 1",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
        "TRUNCATE {table} CASCADE",
    ],
)
@pytest.mark.parametrize("table", ["privacy_auditentry", "privacy_auditcheckpoint"])
def test_trigger_refuses_changes(chain, sql, table):
    before = (AuditEntry.objects.count(), AuditCheckpoint.objects.count())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.format(table=table))
    assert (AuditEntry.objects.count(), AuditCheckpoint.objects.count()) == before


def test_orm_update_and_delete_are_refused(chain):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=2).update(object_id="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=2).delete()
    assert AuditEntry.objects.get(seq=2).object_id == ""


def test_appending_still_works_and_only_a_superuser_can_bypass(chain):
    audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone()[0] is True  # the test role; the app's role is not (docs/operations.md)
    with append_only_bypassed():
        AuditEntry.objects.filter(seq=1).update(object_id="tampered")
    assert AuditEntry.objects.get(seq=1).object_id == "tampered"


def test_setting_replication_role_needs_superuser(chain):
    """The bypass is closed to an ordinary role such as the app's (docs/operations.md)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS cdp_test_app_role")
        cursor.execute("CREATE ROLE cdp_test_app_role NOSUPERUSER")
        cursor.execute("GRANT SELECT, INSERT ON privacy_auditentry TO cdp_test_app_role")
    try:
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE cdp_test_app_role")
            cursor.execute("SET session_replication_role = replica")
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE cdp_test_app_role")
            cursor.execute("ALTER TABLE privacy_auditentry DISABLE TRIGGER privacy_auditentry_append_only")
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE cdp_test_app_role")
            cursor.execute("DROP TABLE privacy_auditentry")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("REVOKE ALL ON privacy_auditentry FROM cdp_test_app_role")
            cursor.execute("DROP ROLE cdp_test_app_role")
