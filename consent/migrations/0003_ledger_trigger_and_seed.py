"""The ledger's guard on PostgreSQL, and the seeded purposes with their first notices.

The trigger refuses UPDATE and DELETE on consent records, row by row. TRUNCATE is not
refused (row triggers do not fire for it): that is how test databases are flushed, and it
needs table-owner rights that the application role should not have in production
(docs/adr/0005-consent-ledger.md).
"""

from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION consent_record_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'consent records are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS consent_record_no_rewrite ON consent_consentrecord;
CREATE TRIGGER consent_record_no_rewrite
    BEFORE UPDATE OR DELETE ON consent_consentrecord
    FOR EACH ROW EXECUTE FUNCTION consent_record_immutable();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS consent_record_no_rewrite ON consent_consentrecord;
DROP FUNCTION IF EXISTS consent_record_immutable();
"""


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


def seed(apps, schema_editor):
    from consent.seed import seed_purposes

    seed_purposes(apps.get_model("consent", "Purpose"), apps.get_model("consent", "PolicyVersion"))


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_ledger")]

    operations = [
        migrations.RunPython(add_trigger, drop_trigger),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
