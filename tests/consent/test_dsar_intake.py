"""Receiving data-subject requests: deadlines by jurisdiction, validation, actor scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from consent.services import portal_actor
from privacy.audit.models import AuditEntry
from privacy.dsar.deadlines import due_at_for
from privacy.dsar.models import DataSubjectRequest
from privacy.dsar.services import DsarError, dsar_create
from tests.factories import ProfileFactory


@pytest.mark.parametrize(
    ("jurisdiction", "received", "due"),
    [
        ("gdpr", datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC)),
        ("gdpr", datetime(2026, 12, 15, 9, tzinfo=UTC), datetime(2027, 1, 15, 9, tzinfo=UTC)),
        ("pipl", datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 12, 14, 9, tzinfo=UTC)),  # Mon -> Mon
        ("pipl", datetime(2026, 11, 28, 9, tzinfo=UTC), datetime(2026, 12, 18, 9, tzinfo=UTC)),  # Sat -> Fri
    ],
)
def test_deadlines_by_jurisdiction(jurisdiction, received, due):
    assert due_at_for(jurisdiction=jurisdiction, received_at=received) == due


def test_deadlines_are_configurable(settings):
    settings.CDP_DSAR_DEADLINES = {"gdpr": {"days": 10}, "pipl": {"working_days": 1}}
    received = datetime(2026, 11, 27, tzinfo=UTC)  # a Friday
    assert due_at_for(jurisdiction="gdpr", received_at=received) == datetime(2026, 12, 7, tzinfo=UTC)
    assert due_at_for(jurisdiction="pipl", received_at=received) == datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_dsar_create_records_and_audits():
    profile = ProfileFactory()
    staff = Actor(kind=ActorKind.API_KEY, actor_id="key:c", role=Role.COMPLIANCE)
    request = dsar_create(
        actor=staff, subject_id=profile.id, request_type="restriction", jurisdiction="gdpr", channel="staff"
    )
    assert request.status == "received" and request.due_at > request.received_at
    entry = AuditEntry.objects.get(action="dsar.create")
    assert entry.subject_id == profile.id and entry.details["type"] == "restriction"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"request_type": "delete_everything"}, DsarError),
        ({"jurisdiction": "ccpa"}, DsarError),
        ({"channel": "fax"}, DsarError),
        ({"subject_id": "00000000-0000-0000-0000-000000000000"}, DsarError),
        ({"actor": Actor(kind=ActorKind.API_KEY, actor_id="key:m", role=Role.MARKETING)}, PermissionDenied),
        ({"actor": portal_actor(subject_id="00000000-0000-0000-0000-000000000001")}, PermissionDenied),
    ],
)
def test_dsar_create_refuses_bad_input(kwargs, error):
    profile = ProfileFactory()
    params = {
        "actor": Actor.system("tests"),
        "subject_id": profile.id,
        "request_type": "access",
        "jurisdiction": "pipl",
        "channel": "api",
    } | kwargs
    with pytest.raises(error):
        dsar_create(**params)
    assert not DataSubjectRequest.objects.exists()
