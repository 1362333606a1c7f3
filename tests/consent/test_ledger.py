"""The consent ledger: append-only evidence, derived state, stale notices, minors."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from consent import selectors
from consent.models import ConsentMethod, ConsentRecord, ConsentState, LedgerImmutable, PolicyVersion, Purpose
from consent.services import (
    ConsentError,
    GuardianRequired,
    consent_grant,
    consent_record,
    consent_withdraw,
    consents_expire_due,
    policy_publish,
    portal_actor,
)
from privacy.audit.models import AuditEntry
from privacy.crypto import keyed_hash
from tests.factories import ProfileFactory, profile_with_traits

pytestmark = pytest.mark.usefixtures("consent_purposes")


@pytest.fixture
def steward() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:steward", role=Role.STEWARD, purpose="consent_management")


def state_of(profile, code: str) -> str:
    return next(p for p in selectors.consent_overview(subject_id=profile.id) if p["purpose"] == code)["state"]


@pytest.mark.django_db
def test_seeded_purposes_and_notices():
    codes = set(Purpose.objects.values_list("code", flat=True))
    assert {
        "analytics",
        "personalisation",
        "marketing_sms",
        "marketing_email",
        "marketing_wechat",
        "marketing_phone",
        "third_party_sharing",
        "cross_border_transfer",
    } <= codes
    assert Purpose.objects.get(code="third_party_sharing").separate_consent == "provision"
    assert Purpose.objects.get(code="cross_border_transfer").separate_consent == "cross_border"
    notice = PolicyVersion.objects.get(purpose__code="marketing_sms", version=1, language="zh-hans")
    assert "短信" in notice.text
    assert notice.text_sha256 == PolicyVersion.hash_text(notice.text)


@pytest.mark.django_db
def test_grant_records_evidence_and_state(steward):
    profile = ProfileFactory()
    record = consent_grant(
        actor=steward,
        subject_id=profile.id,
        purpose="marketing_sms",
        method=ConsentMethod.POS_SIGNATURE,
        source="store-pos",
        language="zh-hans",
        ip_address="203.0.113.9",
        user_agent="PosTerminal/1.0",
        evidence={"signature_ref": "sig-001", "store_id": "SH-01"},
    )
    record.refresh_from_db()
    notice = PolicyVersion.objects.get(purpose__code="marketing_sms", version=1, language="zh-hans")
    assert record.policy_version == notice
    assert record.policy_text_sha256 == notice.text_sha256
    assert record.ip_hash == keyed_hash(domain="consent.ip", value="203.0.113.9")
    assert "203.0.113.9" not in str(record.__dict__)
    assert record.actor_id == "key:steward"
    assert state_of(profile, "marketing_sms") == "granted"
    entry = AuditEntry.objects.get(action="consent.grant")
    assert entry.subject_id == profile.id and entry.details["purpose"] == "marketing_sms"


@pytest.mark.django_db
def test_state_is_the_latest_decision(steward):
    profile = ProfileFactory()
    now = timezone.now()
    consent_grant(
        actor=steward, subject_id=profile.id, purpose="analytics", method="api", occurred_at=now - timedelta(hours=3)
    )
    consent_withdraw(
        actor=steward, subject_id=profile.id, purpose="analytics", method="api", occurred_at=now - timedelta(hours=2)
    )
    assert state_of(profile, "analytics") == "withdrawn"
    # A grant captured earlier but recorded late does not override the later withdrawal.
    consent_grant(actor=steward, subject_id=profile.id, purpose="analytics", method="pos_signature",
                  occurred_at=now - timedelta(hours=2, minutes=30))  # fmt: skip
    assert state_of(profile, "analytics") == "withdrawn"
    assert ConsentRecord.objects.filter(subject=profile).count() == 3
    consent_grant(actor=steward, subject_id=profile.id, purpose="analytics", method="api")
    assert state_of(profile, "analytics") == "granted"
    assert ConsentState.objects.filter(subject=profile).count() == 1


@pytest.mark.django_db
def test_material_policy_version_makes_old_consent_stale(steward):
    profile = ProfileFactory()
    compliance = Actor(kind=ActorKind.API_KEY, actor_id="key:c", role=Role.COMPLIANCE)
    consent_grant(actor=steward, subject_id=profile.id, purpose="marketing_email", method="api")
    policy_publish(actor=compliance, purpose="marketing_email", texts={"en": "Typo fixed."}, material=False)
    assert state_of(profile, "marketing_email") == "granted"
    policy_publish(actor=compliance, purpose="marketing_email", texts={"en": "Now also partners.", "zh-hans": "新"},
                   material=True)  # fmt: skip
    assert state_of(profile, "marketing_email") == "stale"
    record = consent_grant(actor=steward, subject_id=profile.id, purpose="marketing_email", method="api")
    assert record.policy_version_number == 3
    assert state_of(profile, "marketing_email") == "granted"


@pytest.mark.django_db
def test_ledger_refuses_rewrites_in_python(steward):
    record = consent_grant(actor=steward, subject_id=ProfileFactory().id, purpose="analytics", method="api")
    record.event = "withdrawn"
    with pytest.raises(LedgerImmutable):
        record.save()
    with pytest.raises(LedgerImmutable):
        record.delete()
    assert ConsentRecord.objects.get(pk=record.pk).event == "granted"


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE consent_consentrecord SET event = 'withdrawn' WHERE id = %s",
        "DELETE FROM consent_consentrecord WHERE id = %s",
    ],
)
def test_trigger_rejects_update_and_delete_on_postgres(steward, sql):
    record = consent_grant(actor=steward, subject_id=ProfileFactory().id, purpose="analytics", method="api")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [record.pk])
    assert ConsentRecord.objects.filter(pk=record.pk, event="granted").exists()
    # Bulk paths that bypass Model.save() are refused too.
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecord.objects.filter(pk=record.pk).update(channel="sms")


@pytest.mark.django_db
def test_profile_with_records_cannot_be_deleted(steward):
    from django.db.models import ProtectedError

    profile = ProfileFactory()
    consent_grant(actor=steward, subject_id=profile.id, purpose="analytics", method="api")
    with pytest.raises(ProtectedError):
        profile.delete()


def _born_years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    return (today.replace(year=today.year - years) - timedelta(days=days)).isoformat()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("country", "age", "minor"),
    [
        ("CN", 13, True),  # PIPL Art. 31: under 14
        ("CN", 14, False),
        ("DE", 15, True),  # GDPR Art. 8 default 16
        ("DE", 16, False),
        ("FR", 15, False),  # France set 15
        ("", 15, True),  # unknown country: the most protective age of the purpose's jurisdictions
    ],
)
def test_minors_need_a_guardian(steward, country, age, minor):
    traits = {"birth_date": _born_years_ago(age, days=1)}
    if country:
        traits["country"] = country
    profile = profile_with_traits(**traits)
    if minor:
        with pytest.raises(GuardianRequired):
            consent_grant(actor=steward, subject_id=profile.id, purpose="marketing_sms", method="api")
        assert not ConsentRecord.objects.filter(subject=profile).exists()
        assert AuditEntry.objects.filter(action="consent.refused", subject_id=profile.id).exists()
        with pytest.raises(ConsentError, match="guardian_reference"):
            consent_record(actor=steward, subject_id=profile.id, purpose="marketing_sms", method="api",
                           event="guardian_granted")  # fmt: skip
        consent_record(actor=steward, subject_id=profile.id, purpose="marketing_sms", method="api",
                       event="guardian_granted", evidence={"guardian_reference": "form-77"})  # fmt: skip
    else:
        consent_grant(actor=steward, subject_id=profile.id, purpose="marketing_sms", method="api")
    assert state_of(profile, "marketing_sms") == "granted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"purpose": "nope"}, "unknown_purpose"),
        ({"purpose": "marketing_sms", "channel": "email"}, "invalid_channel"),
        ({"purpose": "analytics", "method": "telepathy"}, "invalid_method"),
        ({"purpose": "analytics", "evidence": {"phone": "13800000000"}}, "invalid_evidence"),
        ({"purpose": "analytics", "policy_version": 99}, "no_policy"),
    ],
)
def test_bad_input_writes_nothing(steward, kwargs, code):
    profile = ProfileFactory()
    params = {"actor": steward, "subject_id": profile.id, "method": "api"} | kwargs
    with pytest.raises(ConsentError) as info:
        consent_grant(**params)
    assert info.value.code == code
    assert not ConsentRecord.objects.exists()
    assert not AuditEntry.objects.filter(action="consent.grant").exists()


@pytest.mark.django_db
def test_roles_and_portal_scope(steward):
    profile, other = ProfileFactory(), ProfileFactory()
    marketing = Actor(kind=ActorKind.API_KEY, actor_id="key:m", role=Role.MARKETING, purpose="x")
    with pytest.raises(PermissionDenied):
        consent_grant(actor=marketing, subject_id=profile.id, purpose="analytics", method="api")
    no_purpose = Actor(kind=ActorKind.API_KEY, actor_id="key:s", role=Role.STEWARD)
    with pytest.raises(PermissionDenied) as info:
        consent_grant(actor=no_purpose, subject_id=profile.id, purpose="analytics", method="api")
    assert info.value.code == "purpose_required"
    with pytest.raises(PermissionDenied):
        consent_grant(actor=portal_actor(subject_id=other.id), subject_id=profile.id, purpose="analytics",
                      method="portal_toggle")  # fmt: skip
    consent_grant(actor=portal_actor(subject_id=profile.id), subject_id=profile.id, purpose="analytics",
                  method="portal_toggle")  # fmt: skip
    assert state_of(profile, "analytics") == "granted"


@pytest.mark.django_db
def test_expiry_is_recorded_and_derived(steward):
    profile = ProfileFactory()
    now = timezone.now()
    consent_grant(actor=steward, subject_id=profile.id, purpose="analytics", method="cookie_banner",
                  occurred_at=now - timedelta(days=2), expires_at=now - timedelta(days=1))  # fmt: skip
    assert state_of(profile, "analytics") == "expired"
    assert consents_expire_due(actor=Actor.system("tests")) == 1
    assert consents_expire_due(actor=Actor.system("tests")) == 0
    assert ConsentRecord.objects.filter(subject=profile, event="expired").count() == 1
