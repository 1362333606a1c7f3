"""Audit checkpoints, and triggers that make the audit tables append-only on PostgreSQL.

The triggers reject UPDATE, DELETE and TRUNCATE on privacy_auditentry and privacy_auditcheckpoint.
Ordinary triggers do not fire while `session_replication_role = replica`, which only a superuser
may set: the app's role (docs/operations.md) can neither set it nor drop the triggers, so it can
only append. The test suite's flush runs as superuser with that setting (tests/conftest.py).
SQLite has no such guard: there the hash chain and the signed checkpoints still detect edits.
"""

from django.db import migrations, models

TABLES = ("privacy_auditentry", "privacy_auditcheckpoint")

INSTALL = [
    """
    CREATE OR REPLACE FUNCTION privacy_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit tables are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    *(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION privacy_audit_append_only()"
        for table in TABLES
    ),
]
REMOVE = [
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in TABLES),
    "DROP FUNCTION IF EXISTS privacy_audit_append_only()",
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in INSTALL:
            schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in REMOVE:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(unique=True)),
                ("hash", models.CharField(max_length=64)),
                ("signed_at", models.DateTimeField()),
                ("signature", models.CharField(help_text="Ed25519 signature, hex.", max_length=128)),
                (
                    "key_id",
                    models.CharField(help_text="First 16 hex of SHA-256 over the raw public key.", max_length=16),
                ),
                ("public_key", models.CharField(help_text="Raw Ed25519 public key, hex.", max_length=64)),
            ],
            options={
                "ordering": ["seq"],
            },
        ),
        migrations.RunPython(install, remove),
    ]
