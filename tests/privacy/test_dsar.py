"""Working data-subject requests: access packages, erasure, rectification, restriction,
deadlines. Data goes in through the real ingestion pipeline (`cdp.services.ingest`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Channel, Event, Profile, Source
from cdp.services.ingest import ingest_batch
from consent.enforcement import ConsentRequired, profiles_consented_for, require_processing_allowed
from consent.services import consent_grant
from identity.models import Identifier, Suppression, TraitObservation
from privacy.audit.models import AuditEntry
from privacy.crypto import KeyShreddedError, open_sealed, traits_open
from privacy.dsar import erasure
from privacy.dsar.models import DataSubjectRequest, DsarPackage
from privacy.dsar.package import PackageUnavailable, dsar_package_download
from privacy.dsar.providers import register_provider, unregister_provider
from privacy.dsar.services import (
    DsarError,
    DsarTransitionError,
    dsar_create,
    dsar_deadlines_flag,
    dsar_process,
    dsar_resolve_subject,
    dsar_transition,
)
from tests.identity.conftest import msg

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("consent_purposes")]

OFFICER = Actor(kind=ActorKind.API_KEY, actor_id="key:officer", role=Role.COMPLIANCE, purpose="data_subject_rights")
SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _celery_eager():
    """Run queued DSAR work in-process even when CELERY_BROKER_URL points at Redis (no worker
    runs in the test process): the same task code a worker would run."""
    from cdp.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


ANNA = {"email": "anna.schmidt@example.de", "phone": "+49 151 23456789"}
ANNA_TRAITS = {"name": "Anna Schmidt", "address": "Lindenstraße 7, Berlin", "city": "Berlin"}
BOB = {"email": "bob.other@example.com"}


@pytest.fixture
def send():
    seed_traits()
    source = Source.objects.create(name="web-dsar", channel=Channel.WEB)
    actor = Actor(kind=ActorKind.API_KEY, actor_id="key:src", role=Role.SOURCE, source_id=source.pk)

    def _send(*messages):
        return ingest_batch(actor=actor, messages=list(messages))

    return _send


@pytest.fixture
def people(send):
    """Anna (identify with traits, two purchases, one with a personal property) and Bob."""
    send(
        msg(mid="a1", ids=ANNA, traits=ANNA_TRAITS, ts="2026-03-01T10:00:00Z"),
        msg("track", mid="a2", ids={"email": ANNA["email"]}, event="purchase", properties={"amount": 120.5}),
        msg("track", mid="a3", ids={"email": ANNA["email"]}, event="page_view", ts="2026-03-02T10:00:00Z"),
        msg(mid="b1", ids=BOB, traits={"name": "Bob Other", "city": "Paris"}),
        msg("track", mid="b2", ids=BOB, event="purchase", properties={"amount": 9.0}),
    )
    anna = dsar_resolve_subject(id_type="email", value=ANNA["email"])
    bob = dsar_resolve_subject(id_type="email", value=BOB["email"])
    consent_grant(actor=SYSTEM, subject_id=anna.id, purpose="marketing_sms", method="pos_signature", source="pos")
    return anna, bob


def work(subject_id, request_type, *, options=None, traits=None, jurisdiction="gdpr") -> DataSubjectRequest:
    request = dsar_create(
        actor=OFFICER, subject_id=subject_id, request_type=request_type, jurisdiction=jurisdiction, channel="api"
    )
    dsar_transition(actor=OFFICER, request_id=request.pk, action="verify", verification_method="id_document")
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = dsar_transition(actor=OFFICER, request_id=request.pk, action="start", options=options, traits=traits)
    return started


def unzip(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_subject_is_resolved_by_blind_index_only(people):
    anna, _bob = people
    assert dsar_resolve_subject(id_type="email", value=" Anna.Schmidt@EXAMPLE.de ") == anna
    assert dsar_resolve_subject(id_type="phone", value="+4915123456789") == anna
    with pytest.raises(DsarError):
        dsar_resolve_subject(id_type="email", value="nobody@example.com")
    with pytest.raises(DsarError):
        dsar_resolve_subject(id_type="no_such_type", value="x")


def test_access_package_holds_exactly_what_was_ingested(people):
    anna, bob = people
    request = work(anna.id, "access")
    request.refresh_from_db()
    assert request.status == "completed"  # eager Celery built the package and completed it
    package = DsarPackage.objects.get(request=request)
    assert b"Anna" not in bytes(package.blob) and b"anna" not in bytes(package.blob)  # sealed at rest
    body, _ = dsar_package_download(actor=OFFICER, request_id=request.pk)
    files = unzip(body)
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    data = json.loads(files["data.json"])
    assert {t["key"]: t["value"] for t in data["traits"]} == ANNA_TRAITS
    assert {i["type"]: i["value"] for i in data["identifiers"]} == {"email": ANNA["email"], "phone": "+4915123456789"}
    ingested = Event.objects.filter(profile=anna).values_list("message_id", flat=True)
    assert sorted(e["message_id"] for e in data["events"]) == sorted(ingested)
    assert {"a2", "a3"} <= set(ingested) and not {"b1", "b2"} & set(ingested)
    purchase = next(e for e in data["events"] if e["message_id"] == "a2")
    assert purchase["properties"] == {"amount": 120.5}
    assert [(c["purpose"], c["event"], c["method"]) for c in data["consent_history"]] == [
        ("marketing_sms", "granted", "pos_signature")
    ]
    assert {p["code"] for p in data["purposes"]} >= {"marketing_sms"}
    assert all("retention_days" in p and "recipients" in p for p in data["purposes"])
    assert data["audit_entries"] and all(a["action"] for a in data["audit_entries"])
    # nobody else's data, in any file
    for name, blob in files.items():
        assert b"Bob" not in blob and b"bob.other" not in blob and b"Paris" not in blob, name
        assert str(bob.id).encode() not in blob, name
    rows = list(csv.DictReader(io.StringIO(files["identifiers.csv"].decode())))
    assert {r["type"] for r in rows} == {"email", "phone"}
    assert set(files) >= {"traits.csv", "events.csv", "consent_history.csv", "merge_history.csv", "purposes.csv"}
    assert AuditEntry.objects.filter(action="dsar.download", object_id=str(request.pk)).count() == 1


def test_download_works_once_and_expires(people):
    anna, _ = people
    first = work(anna.id, "portability")
    dsar_package_download(actor=OFFICER, request_id=first.pk)
    with pytest.raises(PackageUnavailable):
        dsar_package_download(actor=OFFICER, request_id=first.pk)
    package = DsarPackage.objects.get(request=first)
    assert package.blob is None
    second = work(anna.id, "access")
    DsarPackage.objects.filter(request=second).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PackageUnavailable):
        dsar_package_download(actor=OFFICER, request_id=second.pk)
    from privacy.dsar.package import dsar_packages_expire

    assert dsar_packages_expire(actor=SYSTEM) == 1
    expired = DsarPackage.objects.get(request=second)
    assert expired.blob is None


def test_providers_contribute_to_package_and_erasure(people):
    anna, _ = people
    erased: list = []
    register_provider("loyalty_notes", export=lambda sid: [{"note": "vip"}], erase=lambda sid: erased.append(sid) or 2)
    try:
        request = work(anna.id, "access")
        files = unzip(dsar_package_download(actor=OFFICER, request_id=request.pk)[0])
        assert json.loads(files["data.json"])["loyalty_notes"] == [{"note": "vip"}]
        assert "loyalty_notes.csv" in files
        erasure_request = work(anna.id, "erasure")
        erasure_request.refresh_from_db()
        assert erased == [anna.id] and erasure_request.result["erased"]["providers"] >= 2
    finally:
        unregister_provider("loyalty_notes")


def test_segment_memberships_are_in_the_package_and_erased(people):
    """The real provider cdp registers: a materialised segment membership is reported and erased."""
    from cdp.segment_models import SegmentMembership
    from cdp.services.segments import segment_create, segment_materialise

    anna, _bob = people
    marketer = Actor(kind=ActorKind.API_KEY, actor_id="key:mkt", role=Role.MARKETING)
    with TestCase.captureOnCommitCallbacks(execute=True):
        segment = segment_create(
            actor=marketer, name="berlin", definition={"type": "trait", "key": "city", "op": "eq", "value": "Berlin"}
        )
    segment_materialise(segment_id=segment.id)
    assert set(SegmentMembership.objects.values_list("profile_id", flat=True)) == {anna.id}

    request = work(anna.id, "access")
    files = unzip(dsar_package_download(actor=OFFICER, request_id=request.pk)[0])
    assert [row["segment"] for row in json.loads(files["data.json"])["segment_memberships"]] == ["berlin"]

    work(anna.id, "erasure")
    assert not SegmentMembership.objects.filter(profile_id=anna.id).exists()


def test_erasure_removes_everything_and_reingestion_is_suppressed(people, send):
    anna, bob = people
    vault, sealed_ids = anna.vault, list(Identifier.objects.filter(profile=anna).values_list("sealed_value", "id_type"))
    request = work(anna.id, "erasure")
    request.refresh_from_db()
    assert request.status == "completed"
    anna.refresh_from_db()
    assert anna.status == "erased" and anna.vault is None
    assert not Event.objects.filter(profile=anna).exists()
    assert not Identifier.objects.filter(profile=anna).exists()
    assert not TraitObservation.objects.filter(origin_profile=anna).exists()
    assert not TraitObservation.objects.filter(profile=anna).exists()
    assert Suppression.objects.count() == 2
    with pytest.raises(KeyShreddedError):
        traits_open(profile_id=anna.id, blob=vault)
    for blob, id_type in sealed_ids:
        with pytest.raises(KeyShreddedError):
            open_sealed(subject_id=anna.id, field=f"identifier:{id_type}", blob=blob)
    receipt = AuditEntry.objects.get(action="profile.erase", subject_id=anna.id)
    assert receipt.details["receipt"] is True and receipt.details["kept_under_legal_obligation"]
    assert receipt.details["counts"]["events"] == 3
    # Bob untouched
    assert Event.objects.filter(profile=bob).count() == 2
    # re-ingestion of any of Anna's identifiers creates nothing
    profiles_before, events_before = Profile.objects.count(), Event.objects.count()
    result = send(
        msg(mid="again1", ids={"email": ANNA["email"]}, traits={"name": "Anna Schmidt"}),
        msg("track", mid="again2", ids={"phone": "+4915123456789"}, event="purchase"),
    )
    assert [r.status for r in result.results] == ["suppressed", "suppressed"]
    assert (Profile.objects.count(), Event.objects.count()) == (profiles_before, events_before)


def test_erasure_interrupted_half_way_completes_on_retry(people, monkeypatch):
    anna, _ = people
    real = erasure._step_traits

    def crash(request):
        real(request)  # the work is done, then the worker dies before the step is recorded
        raise RuntimeError("worker killed")

    monkeypatch.setattr(erasure, "_step_traits", crash)
    request = dsar_create(actor=OFFICER, subject_id=anna.id, request_type="erasure", jurisdiction="pipl", channel="api")
    dsar_transition(actor=OFFICER, request_id=request.pk, action="verify", verification_method="staff_check")
    with pytest.raises(RuntimeError), TestCase.captureOnCommitCallbacks(execute=True):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="start")
    request.refresh_from_db()
    assert request.status == "in_progress"
    assert request.progress["done"] == ["suppress", "events", "identifiers"]
    anna.refresh_from_db()
    assert anna.status == "active" and anna.vault is not None  # the crashed step rolled back
    monkeypatch.setattr(erasure, "_step_traits", real)
    dsar_process(actor=SYSTEM, request_id=request.pk)
    dsar_process(actor=SYSTEM, request_id=request.pk)  # idempotent
    request.refresh_from_db()
    anna.refresh_from_db()
    assert request.status == "completed" and anna.status == "erased" and anna.vault is None
    assert request.progress["done"] == list(erasure.FULL_STEPS)
    assert AuditEntry.objects.filter(action="profile.erase", subject_id=anna.id).count() == 1


def test_partial_erasure_only_removes_matching_events(people):
    anna, _ = people
    request = work(anna.id, "erasure", options={"event_names": ["page_view"]})
    request.refresh_from_db()
    assert request.status == "completed" and request.result["partial"] is True
    assert sorted(Event.objects.filter(profile=anna).values_list("message_id", flat=True)) == ["a1", "a2"]
    anna.refresh_from_db()
    assert anna.status == "active" and traits_open(profile_id=anna.id, blob=anna.vault)["name"] == "Anna Schmidt"
    assert not Suppression.objects.exists()
    with pytest.raises(DsarTransitionError):
        work(anna.id, "erasure", options={"colour": "red"})


def test_rectification_replaces_value_everywhere(people):
    anna, _ = people
    request = work(anna.id, "rectification", traits={"name": "Anna Schmidt-Weber", "city": "Paris"})
    assert request.status == "completed" and request.result == {
        "traits_changed": ["city", "name"],
        "recipients_to_notify": [],  # issue 10: GDPR Art. 19 (no export reached anyone)
    }
    anna.refresh_from_db()
    assert traits_open(profile_id=anna.id, blob=anna.vault)["name"] == "Anna Schmidt-Weber"
    assert anna.attributes["city"] == "Paris"
    names = []
    for obs in TraitObservation.objects.filter(profile=anna):
        if obs.sealed_values:
            opened = open_sealed(subject_id=obs.origin_profile_id, field="trait_observation", blob=obs.sealed_values)
            names += [v for k, v in opened.items() if k == "name"]
        assert obs.plain_values.get("city") in (None, "Paris")
    assert names == ["Anna Schmidt-Weber"]  # the old name survives in no observation
    assert traits_open(profile_id=anna.id, blob=anna.vault)["address"] == ANNA_TRAITS["address"]  # untouched
    entry = AuditEntry.objects.get(action="profile.rectify", subject_id=anna.id)
    assert entry.details == {"keys": ["city", "name"]}
    with pytest.raises(Exception, match="unknown traits"):
        work(anna.id, "rectification", traits={"shoe_size": 42})


@pytest.mark.parametrize("kind", ["restriction", "objection"])
def test_restricted_person_is_excluded_at_once_and_can_be_lifted(people, kind):
    anna, bob = people
    everyone = Profile.objects.filter(pk__in=[anna.id, bob.id])
    before = set(profiles_consented_for(everyone, purpose="marketing_sms"))
    assert anna in before
    request = work(anna.id, kind, options={"purpose": "marketing_sms"} if kind == "objection" else None)
    assert request.status == "completed"
    assert anna not in set(profiles_consented_for(everyone, purpose="marketing_sms"))
    with pytest.raises(ConsentRequired):
        require_processing_allowed(subject_id=anna.id, purpose="marketing_sms")
    dsar_transition(actor=OFFICER, request_id=request.pk, action="lift")
    assert anna in set(profiles_consented_for(everyone, purpose="marketing_sms"))


def test_transitions_are_checked_and_audited(people):
    anna, _ = people
    request = dsar_create(actor=OFFICER, subject_id=anna.id, request_type="access", jurisdiction="pipl", channel="api")
    with pytest.raises(DsarTransitionError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="start")
    with pytest.raises(DsarTransitionError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="verify")  # no method
    with pytest.raises(DsarTransitionError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="extend", reason="busy")  # PIPL
    with pytest.raises(DsarTransitionError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="reject")  # no reason
    rejected = dsar_transition(actor=OFFICER, request_id=request.pk, action="reject", reason="identity not proven")
    assert rejected.status == "rejected" and rejected.reason == "identity not proven"
    entries = AuditEntry.objects.filter(action="dsar.transition", object_id=str(request.pk))
    assert [e.details["to"] for e in entries] == ["rejected"]
    marketer = Actor(kind=ActorKind.API_KEY, actor_id="key:m", role=Role.MARKETING)
    from cdp.actor import PermissionDenied

    with pytest.raises(PermissionDenied):
        dsar_transition(actor=marketer, request_id=request.pk, action="assign")


def test_gdpr_extension_moves_the_deadline_once(people):
    anna, _ = people
    received = datetime(2026, 1, 10, 9, tzinfo=UTC)
    request = dsar_create(
        actor=OFFICER,
        subject_id=anna.id,
        request_type="access",
        jurisdiction="gdpr",
        channel="api",
        received_at=received,
    )
    assert request.due_at == datetime(2026, 2, 10, 9, tzinfo=UTC)
    extended = dsar_transition(actor=OFFICER, request_id=request.pk, action="extend", reason="complex request")
    assert extended.due_at == datetime(2026, 4, 10, 9, tzinfo=UTC) and extended.extension_reason == "complex request"
    with pytest.raises(DsarTransitionError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="extend", reason="again")


def test_deadline_flags_near_and_overdue_and_audits_changes(people):
    anna, _ = people
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def make(received, jurisdiction):
        return dsar_create(
            actor=OFFICER,
            subject_id=anna.id,
            request_type="access",
            jurisdiction=jurisdiction,
            channel="api",
            received_at=received,
        )

    overdue = make(datetime(2026, 4, 1, tzinfo=UTC), "gdpr")  # due 1 May
    near = make(datetime(2026, 5, 12, tzinfo=UTC), "pipl")  # 15 working days: due 2 June
    far = make(datetime(2026, 5, 30, tzinfo=UTC), "gdpr")  # due 30 June
    done = make(datetime(2026, 3, 1, tzinfo=UTC), "gdpr")
    dsar_transition(actor=OFFICER, request_id=done.pk, action="reject", reason="duplicate")
    assert dsar_deadlines_flag(actor=SYSTEM, now=now) == {"near": 1, "overdue": 1}
    flags = dict(DataSubjectRequest.objects.values_list("pk", "deadline_flag"))
    assert (flags[overdue.pk], flags[near.pk], flags[far.pk], flags[done.pk]) == ("overdue", "near", "", "")
    assert AuditEntry.objects.filter(action="dsar.deadline").count() == 2
    dsar_deadlines_flag(actor=SYSTEM, now=now)  # unchanged flags are not audited again
    assert AuditEntry.objects.filter(action="dsar.deadline").count() == 2


def test_restriction_request_removes_the_person_from_the_dp_population(people):
    """The DP engine's population (privacy.dp.bounding.dp_population_base) follows a
    restriction request at once, as it follows consent enforcement."""
    from privacy.dp.bounding import dp_population_base

    anna, bob = people
    for subject in (anna, bob):
        consent_grant(actor=SYSTEM, subject_id=subject.id, purpose="analytics", method="api")
    assert {anna, bob} <= set(dp_population_base())
    work(anna.id, "restriction")
    population = set(dp_population_base())
    assert anna not in population and bob in population
    erased = work(bob.id, "erasure")
    assert erased.status in ("in_progress", "completed")
    assert bob not in set(dp_population_base())


def test_stalled_erasure_is_queued_again_and_finishes(people, monkeypatch):
    """A worker killed mid-erasure leaves the request in progress; the hourly beat task
    (privacy.dsar_deadlines) queues it again and the erasure resumes to completion."""
    from privacy.tasks import dsar_deadlines

    anna, _ = people
    monkeypatch.setattr(erasure, "_step_shred", lambda request, actor: (_ for _ in ()).throw(RuntimeError("killed")))
    request = dsar_create(actor=OFFICER, subject_id=anna.id, request_type="erasure", jurisdiction="gdpr", channel="api")
    dsar_transition(actor=OFFICER, request_id=request.pk, action="verify", verification_method="staff_check")
    with pytest.raises(RuntimeError), TestCase.captureOnCommitCallbacks(execute=True):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="start")
    monkeypatch.undo()
    DataSubjectRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = dsar_deadlines.apply().get()
    assert result["resumed"] == 1
    request.refresh_from_db()
    anna.refresh_from_db()
    assert request.status == "completed" and anna.status == "erased"


def test_manual_complete_cannot_skip_queued_work(people):
    from privacy.dsar.services import DsarStateError

    anna, _ = people
    request = dsar_create(actor=OFFICER, subject_id=anna.id, request_type="erasure", jurisdiction="gdpr", channel="api")
    dsar_transition(actor=OFFICER, request_id=request.pk, action="verify", verification_method="staff_check")
    # The test transaction never commits, so the on-commit enqueue does not run: the work waits.
    dsar_transition(actor=OFFICER, request_id=request.pk, action="start")
    with pytest.raises(DsarStateError):
        dsar_transition(actor=OFFICER, request_id=request.pk, action="complete")
    anna.refresh_from_db()
    assert anna.status == "active"
    dsar_process(actor=SYSTEM, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "completed"
