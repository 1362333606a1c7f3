"""The database system check warns when PostgreSQL's autovacuum (fresh statistics) is off."""

from __future__ import annotations

import pytest
from django.db import connection

from cdp.checks import autovacuum_enabled


@pytest.mark.django_db
def test_autovacuum_check_reports_the_server_setting():
    found = autovacuum_enabled(None, databases=["default"])
    if connection.vendor != "postgresql":
        assert found == []
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        on = cursor.fetchone()[0] == "on"
    assert [w.id for w in found] == ([] if on else ["cdp.W001"])


def test_the_check_touches_no_database_unless_asked():
    assert autovacuum_enabled(None) == []
