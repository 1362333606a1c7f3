"""No audit entry ever contains personal data (property test).

Hypothesis generates e-mail addresses, phone numbers and names and feeds them through every
audited path in this branch that takes client-typed text: API key creation with a name, failed
authentication with a bad key (in the key, in the URL), and the audit search filters. Then the
whole audit table is scanned as text.
"""

from __future__ import annotations

import json
import string

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.actor import Role
from privacy.audit import AuditAction, audit_record
from privacy.audit.models import AuditEntry
from privacy.audit.writer import AuditDetailsError, AuditFieldError

LETTERS = string.ascii_letters
emails = st.builds(
    "{}.{}@{}.{}".format,
    st.text(LETTERS, min_size=3, max_size=10),
    st.text(LETTERS + string.digits, min_size=3, max_size=10),
    st.text(string.ascii_lowercase, min_size=3, max_size=10),
    st.sampled_from(["com", "cn", "de", "com.cn"]),
)
phones = st.one_of(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),  # mainland mobile
    st.from_regex(r"861[3-9][0-9]{9}", fullmatch=True),  # with the country code: 13 digits
    st.from_regex(r"49[0-9]{10}", fullmatch=True),  # 12 digits, well-formed as a key prefix
)
names = st.one_of(
    st.builds("{} {}".format, st.text(LETTERS, min_size=3, max_size=12), st.text(LETTERS, min_size=3, max_size=12)),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=4),
)
personal = st.fixed_dictionaries({"email": emails, "phone": phones, "name": names})


def _audit_text() -> str:
    """Every column of every audit row, as the database returns it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM privacy_auditentry")
        rows = cursor.fetchall()
    return json.dumps([[str(value) for value in row] for row in rows], ensure_ascii=False).lower()


def _assert_absent(data: dict[str, str]) -> None:
    text = _audit_text()
    for kind, value in data.items():
        assert value.lower() not in text, f"{kind} reached the audit trail"


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=personal)
def test_generated_personal_data_never_reaches_the_audit_trail(make_client, anon_client, data):
    admin = make_client(Role.ADMIN)
    compliance = make_client(Role.COMPLIANCE)
    before = AuditEntry.objects.count()

    # 1. An API key named after a person (its name is kept on the key, never in the audit entry).
    created = admin.post("/api/v1/keys", {"name": data["name"], "role": "steward"})
    assert created.status_code == 201, created.content

    # 2. Failed authentication: personal data in the key, and in the URL.
    for header in (
        f"Bearer cdp_{data['phone']}_{data['email']}",
        f"Bearer cdp_{data['email']}_x",
        f"Bearer {data['name']}",
        f"Token {data['email']}",
    ):
        anon_client.credentials(HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin-1"))
        assert anon_client.get(f"/api/v1/keys/{data['email']}").status_code == 401
        assert anon_client.get("/api/v1/me").status_code == 401
    # A permission denial on a URL that carries personal data.
    assert compliance.delete(f"/api/v1/keys/{data['phone']}").status_code == 403

    # 3. Audit search filters typed by an officer.
    assert compliance.get("/api/v1/audit", {"actor": data["email"]}).status_code == 200
    assert compliance.get("/api/v1/audit", {"actor": data["name"], "outcome": "denied"}).status_code == 200
    assert compliance.get("/api/v1/audit", {"subject": data["phone"]}).status_code == 400
    assert compliance.get("/api/v1/audit", {"purpose": data["email"]}).status_code == 400

    assert AuditEntry.objects.count() >= before + 12
    _assert_absent(data)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=emails)
def test_writer_refuses_email_shaped_text_anywhere(system_actor, email):
    with pytest.raises((AuditDetailsError, AuditFieldError)):
        audit_record(actor=system_actor, action=AuditAction.SYSTEM, details={"note": f"contact {email}"})
    with pytest.raises(AuditFieldError):
        audit_record(actor=system_actor, action=AuditAction.SYSTEM, object_id=email[:64])
    assert email.lower() not in _audit_text()


@pytest.mark.django_db
@pytest.mark.parametrize("details", [{"x": object()}, {"x": {1, 2}}, {"x": b"\x00"}, {"x": [[object()]]}])
def test_writer_refuses_non_scalar_details(system_actor, details):
    with pytest.raises(AuditDetailsError):
        audit_record(actor=system_actor, action=AuditAction.SYSTEM, details=details)
