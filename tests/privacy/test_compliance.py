"""Compliance operations (issue 10): recipients register gating exports, disclosures and GDPR Art. 19
notices in erasure receipts, the breach register's 72-hour clock, and impact assessments."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import SegmentExport
from cdp.services import segments as svc
from consent.models import Purpose
from consent.services import consent_grant
from privacy.audit.models import AuditEntry
from privacy.compliance import services as comp
from privacy.compliance.models import Breach, Disclosure
from privacy.dsar.models import DataSubjectRequest
from tests.cdp.test_segments import contacts, make_segment, marketer, members, shanghai, steward  # noqa: F401
from tests.factories import registered_recipient
from tests.identity.conftest import registry, send, source, source_actor  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def officer() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:dpo", role=Role.COMPLIANCE)


@pytest.fixture
def second_officer() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:dpo2", role=Role.COMPLIANCE)


def export_to(marketer, segment, recipient_name, purpose="marketing_sms", channel="sms"):  # noqa: F811
    export = svc.export_create(
        actor=marketer, segment_id=segment.id, purpose=purpose, channel=channel, recipient_name=recipient_name
    )
    return svc.export_build(export_id=export.id)


def test_export_to_unregistered_recipient_is_refused_and_audited(shanghai, marketer):  # noqa: F811
    with pytest.raises(svc.SegmentError) as info:
        svc.export_create(
            actor=marketer, segment_id=shanghai.id, purpose="marketing_sms", channel="sms", recipient_name="Nobody"
        )
    assert info.value.path == "$.recipient_name"
    assert not SegmentExport.objects.exists()
    refused = AuditEntry.objects.get(action="export.refused")
    assert refused.outcome == "denied" and refused.details["reason"] == "unregistered_recipient"


def test_export_refused_for_a_purpose_the_recipient_is_not_allowed(shanghai, marketer):  # noqa: F811
    registered_recipient("Mail house", purposes=["marketing_email"])
    with pytest.raises(svc.SegmentError, match="purpose not allowed"):
        svc.export_create(
            actor=marketer, segment_id=shanghai.id, purpose="marketing_sms", channel="sms", recipient_name="Mail house"
        )


def test_abroad_recipient_without_transfer_mechanism_cannot_be_registered(officer, consent_purposes):
    with pytest.raises(comp.ComplianceError) as info:
        comp.recipient_create(
            actor=officer, name="HQ", contact="hq@example.eu", role="handler", country="DE", purposes=["analytics"]
        )
    assert info.value.path == "$.transfer_mechanism"


def test_abroad_export_needs_cross_border_consent_per_person(contacts, shanghai, marketer, steward, officer):  # noqa: F811
    """Decision: the export to a recipient abroad is built, but only with people holding the separate
    cross-border consent (PIPL Art. 39); without it a person is excluded, never sent."""
    abroad = comp.recipient_create(
        actor=officer,
        name="EU agency",
        contact="dpo@agency.example.eu",
        role="processor",
        country="DE",
        transfer_mechanism="pipl_standard_contract",
        purposes=["marketing_sms"],
    )
    export = export_to(marketer, shanghai, abroad.name)
    assert export.row_count == 0  # nobody granted cross_border_transfer
    consent_grant(actor=steward, subject_id=contacts["p1"].id, purpose="cross_border_transfer", method="api")
    export = export_to(marketer, shanghai, abroad.name)
    assert export.row_count == 1
    assert set(Disclosure.objects.filter(export_id=export.id).values_list("subject_id", flat=True)) == {
        contacts["p1"].id
    }


def test_another_handler_needs_third_party_consent(contacts, shanghai, marketer, steward):  # noqa: F811
    partner = registered_recipient("Partner brand", role="handler", purposes=["marketing_sms"])
    assert export_to(marketer, shanghai, partner.name).row_count == 0
    consent_grant(actor=steward, subject_id=contacts["p0"].id, purpose="third_party_sharing", method="api")
    consent_grant(actor=steward, subject_id=contacts["p2"].id, purpose="third_party_sharing", method="api")
    assert export_to(marketer, shanghai, partner.name).row_count == 2
    processor = registered_recipient("SMS gateway", purposes=["marketing_sms"])
    assert export_to(marketer, shanghai, processor.name).row_count == 3


def test_recipient_crud_is_audited_and_role_checked(officer, marketer, consent_purposes):  # noqa: F811
    with pytest.raises(PermissionDenied):
        comp.recipient_create(actor=marketer, name="X", contact="x@x", role="processor", country="CN")
    recipient = comp.recipient_create(
        actor=officer, name="SMS gateway", contact="ops@gw.example", role="processor", country="cn"
    )
    assert recipient.country == "CN"
    comp.recipient_update(actor=officer, recipient_id=recipient.pk, purposes=["marketing_sms"])
    comp.recipient_deactivate(actor=officer, recipient_id=recipient.pk)
    entries = list(AuditEntry.objects.filter(action="recipient.change").order_by("seq"))
    assert [e.details["op"] for e in entries] == ["create", "update", "update"]
    assert entries[1].details["fields"] == ["purposes"] and entries[2].details["fields"] == ["active"]


def test_erasure_receipt_lists_recipients_and_notification_state(contacts, shanghai, marketer, officer, steward):  # noqa: F811
    from privacy.dsar.services import dsar_create, dsar_process, dsar_transition

    gateway = registered_recipient("SMS gateway", purposes=["marketing_sms"])
    registered_recipient("Unused vendor", purposes=["marketing_sms"])
    export_to(marketer, shanghai, gateway.name)
    person = contacts["p1"]
    request = dsar_create(
        actor=officer, request_type="erasure", jurisdiction="gdpr", subject_id=person.id, channel="api"
    )
    dsar_transition(actor=officer, request_id=request.pk, action="verify", verification_method="staff_check")
    dsar_transition(actor=officer, request_id=request.pk, action="start")
    request = dsar_process(actor=officer, request_id=request.pk)
    assert request.status == "completed"
    notices = request.result["recipients_to_notify"]
    assert [(n["name"], n["notified"]) for n in notices] == [("SMS gateway", False)]
    out = comp.recipient_notification_confirm(actor=officer, request_id=request.pk, recipient_id=gateway.pk)
    assert out["recipients"][0]["notified"] is True
    request.refresh_from_db()
    assert str(gateway.pk) in request.result["recipient_notifications"]
    assert AuditEntry.objects.filter(action="recipient.notify", subject_id=person.id).count() == 1
    other = registered_recipient("Unused vendor")
    with pytest.raises(comp.ComplianceError):
        comp.recipient_notification_confirm(actor=officer, request_id=request.pk, recipient_id=other.pk)
    assert DataSubjectRequest.objects.get(pk=request.pk).result["recipient_notifications"].keys() == {str(gateway.pk)}


# --- breaches ---------------------------------------------------------------------------------------


def test_breach_clock_near_then_overdue_flagged_once(officer, system_actor):
    discovered = timezone.now() - dt.timedelta(hours=1)
    breach = comp.breach_create(
        actor=officer, title="Lost laptop", discovered_at=discovered, data_categories=["contact"]
    )
    assert breach.deadline_at == discovered + dt.timedelta(hours=72)
    assert comp.breaches_flag_deadlines(actor=system_actor) == {"near": 0, "overdue": 0}
    at_50h = discovered + dt.timedelta(hours=50)
    assert comp.breaches_flag_deadlines(actor=system_actor, now=at_50h) == {"near": 1, "overdue": 0}
    assert comp.breaches_flag_deadlines(actor=system_actor, now=at_50h) == {"near": 0, "overdue": 0}
    at_73h = discovered + dt.timedelta(hours=73)
    assert comp.breaches_flag_deadlines(actor=system_actor, now=at_73h) == {"near": 0, "overdue": 1}
    breach.refresh_from_db()
    assert breach.deadline_flag == "overdue"
    flags = list(AuditEntry.objects.filter(action="breach.deadline").values_list("details__flag", "outcome"))
    assert flags == [("near", "ok"), ("overdue", "error")]
    from privacy.tasks import breach_deadlines

    assert breach_deadlines() == {"near": 0, "overdue": 0}  # the beat task: already flagged, not again
    assert AuditEntry.objects.filter(action="breach.deadline").count() == 2


def test_notified_breach_is_not_flagged_and_form_has_the_fields(officer, system_actor):
    discovered = timezone.now() - dt.timedelta(hours=80)
    breach = comp.breach_create(actor=officer, title="Misdirected mail", discovered_at=discovered)
    comp.breach_update(actor=officer, breach_id=breach.pk, status="notified", measures="recalled", cause="typo")
    assert comp.breaches_flag_deadlines(actor=system_actor) == {"near": 0, "overdue": 0}
    form = comp.breach_notification_form(actor=officer, breach_id=breach.pk)
    assert form["late"] is True and form["measures_taken_or_proposed"] == "recalled"
    assert {"nature", "approximate_number_of_data_subjects", "contact", "deadline_at"} <= set(form)
    actions = list(AuditEntry.objects.filter(object_type="breach").values_list("action", flat=True))
    assert actions.count("breach.create") == 1 and "breach.update" in actions and "breach.export" in actions


def test_breach_estimates_affected_people_from_the_audit_trail(officer, make_actor):
    from privacy.audit import audit_record
    from tests.factories import ProfileFactory

    rogue = make_actor(Role.STEWARD, actor_id="key:rogue")
    start = timezone.now() - dt.timedelta(minutes=1)
    people = [ProfileFactory() for _ in range(3)]
    for person in [*people, people[0]]:
        audit_record(actor=rogue, action="profile.read", subject_id=person.id)
    audit_record(actor=officer, action="profile.read", subject_id=ProfileFactory().id)
    breach = comp.breach_create(actor=officer, title="Leaked key", actor_id="key:rogue")
    assert breach.affected_estimate == 3
    window = comp.breach_create(
        actor=officer, title="Window", window_start=start, window_end=timezone.now() + dt.timedelta(seconds=1)
    )
    assert window.affected_estimate == 4
    with pytest.raises(comp.ComplianceError):
        comp.breach_create(actor=officer, title="Future", discovered_at=timezone.now() + dt.timedelta(hours=1))
    assert Breach.objects.count() == 2


# --- impact assessments -------------------------------------------------------------------------------


def test_activation_refused_without_an_approved_assessment(officer, second_officer, consent_purposes):
    Purpose.objects.filter(code="cross_border_transfer").update(active=False)
    with pytest.raises(comp.ActivationRefused):
        comp.purpose_activate(actor=officer, purpose="cross_border_transfer")
    assert not Purpose.objects.get(code="cross_border_transfer").active
    assert AuditEntry.objects.get(action="purpose.activate").outcome == "denied"
    assessment = comp.assessment_create(
        actor=officer, purpose="cross_border_transfer", content={"risks": "foreign access", "measures": "SCC"}
    )
    assert (assessment.retain_until - timezone.now().date()).days >= 3 * 365
    with pytest.raises(comp.ActivationRefused):  # a draft is not enough
        comp.purpose_activate(actor=officer, purpose="cross_border_transfer")
    with pytest.raises(PermissionDenied):  # four eyes
        comp.assessment_approve(actor=officer, assessment_id=assessment.pk)
    comp.assessment_approve(actor=second_officer, assessment_id=assessment.pk)
    comp.purpose_activate(actor=officer, purpose="cross_border_transfer")
    assert Purpose.objects.get(code="cross_border_transfer").active


def test_purpose_without_assessment_need_activates(officer, consent_purposes):
    Purpose.objects.filter(code="marketing_sms").update(active=False)
    comp.purpose_activate(actor=officer, purpose="marketing_sms")
    assert Purpose.objects.get(code="marketing_sms").active


def test_compliance_doc_maps_the_issue_articles():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "compliance.md").read_text()
    rows = {m.group(1) for m in re.finditer(r"^\| ((?:GDPR|PIPL) \d+)", text, flags=re.M)}
    gdpr = [5, 6, 7, 8, 9, 12, *range(15, 23), 25, 28, 30, 32, 33, 34, 35, *range(44, 50)]
    pipl = [*range(13, 18), 19, 21, 23, 24, 25, *range(28, 32), 38, 39, 40, *range(44, 52), *range(54, 58)]
    missing = ({f"GDPR {n}" for n in gdpr} | {f"PIPL {n}" for n in pipl}) - rows
    assert not missing, sorted(missing)
    assert "Left to the operator's organisation" in text


def test_access_package_lists_disclosures_and_demo_step_is_idempotent(contacts, shanghai, marketer):  # noqa: F811
    from privacy.dsar.providers import providers

    gateway = registered_recipient("SMS gateway", purposes=["marketing_sms"])
    export_to(marketer, shanghai, gateway.name)
    provider = {p.name: p for p in providers()}["recipient_disclosures"]
    rows = provider.export(contacts["p0"].id)
    assert [(r["recipient"], r["purpose"]) for r in rows] == [("SMS gateway", "marketing_sms")]
    assert provider.erase is None  # kept: it is what lets the controller tell the recipient (Art. 19)
    assert "3 added" in comp.seed_recipients()
    assert "0 added" in comp.seed_recipients()
