"""Segments: rule semantics (table-driven), SQL materialisation, injection, merge/erasure hooks,
and consent-gated exports (withdrawal, fields per channel, once-only download, expiry)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from cdp.actor import Actor, ActorKind, PermissionDenied, Role
from cdp.models import Profile, Segment, SegmentExport, SegmentMembership
from cdp.services import segments as svc
from cdp.services.rules import RuleError, rules_compile
from consent.services import consent_grant, consent_withdraw
from identity.models import Identifier, Suppression
from privacy.audit.models import AuditEntry
from tests.factories import EventFactory, ProfileFactory, dp_registry, registered_recipient
from tests.identity.conftest import msg, registry, send, source, source_actor  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db]
NOW = timezone.now()


@pytest.fixture
def marketer() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:mkt", role=Role.MARKETING)


@pytest.fixture
def steward() -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:steward", role=Role.STEWARD, purpose="consent_management")


@pytest.fixture
def town(db, consent_purposes):
    """Five people with hand-known facts (the expectations below are computed from this by hand)."""
    dp_registry()
    ann = ProfileFactory(attributes={"city": "Shanghai", "membership_level": "gold"}, journey_stage="loyalty")
    bob = ProfileFactory(attributes={"city": "Shanghai"}, journey_stage="purchase")
    cai = ProfileFactory(attributes={"city": "Beijing", "membership_level": "gold"}, journey_stage="awareness")
    dan = ProfileFactory(attributes={}, journey_stage="consideration")
    eve = ProfileFactory(attributes={"city": "Shanghai"}, journey_stage="purchase", status="erased")
    EventFactory(profile=ann, name="purchase", properties={"amount": 100}, occurred_at=NOW - dt.timedelta(days=3))
    EventFactory(profile=bob, name="purchase", properties={"amount": 900}, occurred_at=NOW - dt.timedelta(days=60))
    EventFactory(profile=eve, name="purchase", properties={"amount": 50}, occurred_at=NOW - dt.timedelta(days=1))
    EventFactory(profile=cai, name="survey_response", properties={"score": 3}, channel="call_center")
    EventFactory(profile=dan, name="survey_response", properties={"score": 10}, channel="mini_program")
    EventFactory(profile=ann, name="survey_response", properties={"score": 8}, channel="web")
    return {"ann": ann, "bob": bob, "cai": cai, "dan": dan, "eve": eve}


SEMANTICS = [
    ("trait eq", {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"}, {"ann", "bob"}),
    ("trait ne excludes missing key", {"type": "trait", "key": "city", "op": "ne", "value": "Shanghai"}, {"cai"}),
    ("trait in", {"type": "trait", "key": "city", "op": "in", "value": ["Beijing", "Other"]}, {"cai"}),
    ("trait exists", {"type": "trait", "key": "membership_level", "op": "exists"}, {"ann", "cai"}),
    ("not exists", {"not": {"type": "trait", "key": "city", "op": "exists"}}, {"dan"}),
    ("journey stage", {"type": "journey_stage", "op": "in", "value": ["purchase", "loyalty"]}, {"ann", "bob"}),
    ("bought in 30 days", {"type": "event", "name": "purchase", "within_days": 30}, {"ann"}),
    (
        "bought >= 500",
        {"type": "event", "name": "purchase", "where": [{"property": "amount", "op": "gte", "value": 500}]},
        {"bob"},
    ),
    ("channel", {"type": "channel", "op": "eq", "value": "call_center"}, {"cai"}),
    ("detractors", {"type": "nps_band", "value": "detractor"}, {"cai"}),
    ("promoters", {"type": "nps_band", "value": "promoter"}, {"dan"}),
    ("passives", {"type": "nps_band", "value": "passive"}, {"ann"}),
    (
        "all: Shanghai and bought in 30 days",
        {
            "all": [
                {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"},
                {"type": "event", "name": "purchase", "within_days": 30},
            ]
        },
        {"ann"},
    ),
    (
        "any: gold or promoter",
        {
            "any": [
                {"type": "trait", "key": "membership_level", "op": "eq", "value": "gold"},
                {"type": "nps_band", "value": "promoter"},
            ]
        },
        {"ann", "cai", "dan"},
    ),
    (
        "detractors who contacted the call centre",
        {"all": [{"type": "nps_band", "value": "detractor"}, {"type": "channel", "op": "eq", "value": "call_center"}]},
        {"cai"},
    ),
    (
        "no sms consent",
        {"type": "consent", "purpose": "marketing_sms", "state": "not_granted"},
        {"ann", "bob", "cai", "dan"},
    ),
]


def members(segment: Segment) -> set:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True))


def make_segment(marketer, definition, name="s") -> Segment:
    return svc.segment_create(actor=marketer, name=name, definition=definition)


@pytest.mark.parametrize(("label", "tree", "expected"), SEMANTICS, ids=[s[0] for s in SEMANTICS])
def test_rule_semantics_match_hand_computed_membership(town, marketer, label, tree, expected):
    segment = make_segment(marketer, tree)
    result = svc.segment_materialise(segment_id=segment.id)
    assert members(segment) == {town[n].id for n in expected}
    assert result.members == len(expected)
    row = SegmentMembership.objects.filter(segment=segment).first()
    assert row.definition_version == 1 and row.computed_at is not None


def test_consent_condition_follows_the_ledger(town, marketer, steward):
    consent_grant(actor=steward, subject_id=town["bob"].id, purpose="marketing_sms", method="api")
    segment = make_segment(marketer, {"type": "consent", "purpose": "marketing_sms", "channel": "sms"})
    svc.segment_materialise(segment_id=segment.id)
    assert members(segment) == {town["bob"].id}


def test_update_bumps_version_and_rematerialises_from_the_new_definition(town, marketer):
    segment = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"})
    svc.segment_materialise(segment_id=segment.id)
    svc.segment_update(
        actor=marketer, segment_id=segment.id, definition={"type": "journey_stage", "op": "eq", "value": "awareness"}
    )
    svc.segment_materialise(segment_id=segment.id)
    assert members(segment) == {town["cai"].id}
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("definition_version", flat=True)) == {2}
    assert AuditEntry.objects.filter(action="segment.materialize").count() == 2


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ({"all": [{"type": "trait", "key": "city", "op": "eq", "value": 5}]}, "$.definition.all[0].value"),
        ({"type": "trait", "key": "email", "op": "exists"}, "$.definition.key"),
        ({"type": "trait", "key": "name", "op": "exists"}, "$.definition.key"),
        ({"type": "nps_band", "value": "fans"}, "$.definition.value"),
        ({"any": [{"type": "consent", "purpose": "nope"}]}, "$.definition.any[0].purpose"),
        ({"not": {"type": "consent", "purpose": "marketing_sms", "state": "maybe"}}, "$.definition.not.state"),
        ({"type": "wizard"}, "$.definition.type"),
        ([], "$.definition"),
    ],
)
def test_validation_names_the_path_and_writes_nothing(town, marketer, tree, path):
    with pytest.raises(svc.SegmentError) as info:
        make_segment(marketer, tree)
    assert info.value.path == path
    assert not Segment.objects.exists()


def test_personal_identifier_is_refused_by_name(town):
    with pytest.raises(RuleError, match="personal identifiers"):
        rules_compile({"type": "trait", "key": "phone", "op": "exists"})


INJECTIONS = [
    "x'; DROP TABLE cdp_profile; --",
    'Shanghai" OR 1=1 --',
    "') OR ('1'='1",
    "%' OR '%'='",
]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_values_are_parameters_never_sql_text(town, marketer, attack):
    dp_registry()
    tree = {
        "any": [
            {"type": "trait", "key": "favourite_store", "op": "eq", "value": attack},
            {"type": "event", "name": attack, "where": [{"property": "store_id", "op": "in", "value": [attack]}]},
        ]
    }
    sql, params = svc.segment_members_sql(tree)
    assert attack not in sql
    assert any(attack in str(p) for p in params)
    segment = make_segment(marketer, tree)
    assert svc.segment_materialise(segment_id=segment.id).members == 0
    assert Profile.objects.count() == 5  # the table is still there
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Profile._meta.db_table}")  # noqa: S608
        assert cursor.fetchone()[0] == 5


@pytest.mark.parametrize("attack", ["city'--", "city; DROP TABLE x", "City", "a__b", "city\x00"])
def test_trait_names_are_checked_against_the_registry_never_interpolated(town, marketer, attack):
    with pytest.raises(svc.SegmentError) as info:
        make_segment(marketer, {"type": "trait", "key": attack, "op": "exists"})
    assert info.value.path == "$.definition.key"


def test_merge_and_erasure_hooks(town, marketer):
    segment_a = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Beijing"}, "a")
    segment_b = make_segment(marketer, {"type": "trait", "key": "membership_level", "op": "exists"}, "b")
    for s in (segment_a, segment_b):
        svc.segment_materialise(segment_id=s.id)
    # cai is in a and b, ann in b only: merging cai into ann gives ann a, keeps one row in b.
    moved = svc.segment_memberships_move(survivor_id=town["ann"].id, absorbed_ids=[town["cai"].id])
    assert moved == 1
    assert members(segment_a) == {town["ann"].id} and members(segment_b) == {town["ann"].id}
    exported = svc.segment_memberships_export(town["ann"].id)
    assert {e["segment"] for e in exported} == {"a", "b"}
    assert svc.segment_memberships_erase(town["ann"].id) == 2
    assert not SegmentMembership.objects.exists()


def test_a_merge_by_ingestion_moves_membership(send, marketer, consent_purposes):  # noqa: F811
    send(msg(ids={"email": "a@example.com"}, traits={"city": "Shanghai"}, ts="2026-01-01T10:00:00Z"))
    send(msg(ids={"phone": "13812345678"}, traits={"city": "Beijing"}, ts="2026-01-03T10:00:00Z"))
    segment = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Beijing"})
    svc.segment_materialise(segment_id=segment.id)
    beijing = Profile.objects.get(attributes__city="Beijing")
    assert members(segment) == {beijing.id}
    r = send(msg(ids={"email": "a@example.com", "phone": "13812345678"}, mid="link", ts="2026-01-02T10:00:00Z"))
    assert r.merges == 1
    survivor = Profile.objects.get(status="active")
    assert survivor.id != beijing.id
    assert members(segment) == {survivor.id}


def test_merges_chained_in_one_batch_move_membership_to_the_final_survivor(send, marketer, consent_purposes):  # noqa: F811
    # Three profiles, each in the segment; one batch then merges them as a chain (2 into 1,
    # then 1 into 0): every membership must end on the final survivor, once.
    for i, city in enumerate(["Beijing", "Beijing", "Beijing"]):
        send(msg(ids={"phone": f"1381234567{i}"}, traits={"city": city}, ts=f"2026-01-0{i + 1}T10:00:00Z"))
    segment = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Beijing"})
    svc.segment_materialise(segment_id=segment.id)
    assert len(members(segment)) == 3
    # The e-mail joins the newest profile (2), which merges into 1, which then merges into 0.
    r = send(
        msg("alias", ids={"phone": "13812345672", "email": "one@example.com"}, ts="2026-01-05T10:00:00Z"),
        msg("alias", ids={"phone": "13812345671", "email": "one@example.com"}, ts="2026-01-05T10:01:00Z"),
        msg("alias", ids={"phone": "13812345670", "email": "one@example.com"}, ts="2026-01-05T10:02:00Z"),
    )
    assert r.merges == 2
    first = Profile.objects.order_by("created_at")[0]
    assert set(Profile.objects.filter(status="merged").values_list("merged_into_id", flat=True)) == {first.id}
    survivor = Profile.objects.get(status="active")
    assert members(segment) == {survivor.id}
    assert SegmentMembership.objects.filter(segment=segment).count() == 1


# --- exports ---------------------------------------------------------------------------------


@pytest.fixture
def contacts(send, consent_purposes, steward):  # noqa: F811
    """Three people with phone, e-mail and WeChat ids, all granted marketing_sms and marketing_email."""
    people = {}
    for i, name in enumerate(["p0", "p1", "p2"]):
        send(
            msg(
                ids={"phone": f"1380000000{i}", "email": f"{name}@example.com", "wechat_openid": f"oid-{name}"},
                traits={"city": "Shanghai", "name": name.upper()},
            )
        )
        people[name] = Profile.objects.order_by("-created_at").first()
    for person in people.values():
        for purpose in ("marketing_sms", "marketing_email"):
            consent_grant(actor=steward, subject_id=person.id, purpose=purpose, method="api")
    return people


@pytest.fixture
def shanghai(contacts, marketer, django_capture_on_commit_callbacks):
    segment = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"})
    svc.segment_materialise(segment_id=segment.id)
    return segment


def build(marketer, segment, channel="sms", purpose="marketing_sms") -> SegmentExport:
    recipient = registered_recipient()  # issue 10: exports go to registered recipients only
    export = svc.export_create(
        actor=marketer, segment_id=segment.id, purpose=purpose, channel=channel, recipient_name=recipient.name
    )
    return svc.export_build(export_id=export.id)


def test_withdrawal_between_materialisation_and_export_excludes_the_person(contacts, shanghai, marketer, steward):
    assert len(members(shanghai)) == 3
    consent_withdraw(actor=steward, subject_id=contacts["p1"].id, purpose="marketing_sms", method="portal_toggle")
    export = build(marketer, shanghai)
    rows = svc.export_download(actor=marketer, export_id=export.id)["rows"]
    assert {r["profile_id"] for r in rows} == {str(contacts["p0"].id), str(contacts["p2"].id)}
    assert export.excluded_dp["epsilon"] == pytest.approx(0.1)
    assert "value" in export.excluded_dp and "error_95" in export.excluded_dp


@pytest.mark.parametrize(
    ("channel", "purpose", "field"), [("sms", "marketing_sms", "phone"), ("email", "marketing_email", "email")]
)
def test_an_export_never_contains_a_field_the_channel_does_not_need(
    contacts, shanghai, marketer, channel, purpose, field
):
    export = build(marketer, shanghai, channel=channel, purpose=purpose)
    content = svc.export_download(actor=marketer, export_id=export.id)
    assert content["columns"] == ["profile_id", field]
    assert len(content["rows"]) == 3
    for row in content["rows"]:
        assert set(row) == {"profile_id", field}
    values = {r[field] for r in content["rows"]}
    assert (
        values
        == (
            {"+8613800000000", "+8613800000001", "+8613800000002"}
            if field == "phone"
            else {"p0@example.com", "p1@example.com", "p2@example.com"}
        )
        or len(values) == 3
    )
    assert "P0" not in str(content)  # the sealed name never leaves


def test_suppressed_and_erased_members_are_left_out(contacts, shanghai, marketer):
    phone = Identifier.objects.get(profile=contacts["p0"], id_type="phone")
    Suppression.objects.create(id_type="phone", blind_index=phone.blind_index)
    Profile.objects.filter(id=contacts["p2"].id).update(status="erased")
    export = build(marketer, shanghai)
    rows = svc.export_download(actor=marketer, export_id=export.id)["rows"]
    assert [r["profile_id"] for r in rows] == [str(contacts["p1"].id)]


def test_payload_is_sealed_downloaded_once_by_the_requester_and_then_shredded(contacts, shanghai, marketer):
    export = build(marketer, shanghai)
    stored = bytes(SegmentExport.objects.get(id=export.id).payload)
    assert b"example.com" not in stored and b"1380000000" not in stored
    other = Actor(kind=ActorKind.API_KEY, actor_id="key:other", role=Role.MARKETING)
    with pytest.raises(PermissionDenied):
        svc.export_download(actor=other, export_id=export.id)
    svc.export_download(actor=marketer, export_id=export.id)
    with pytest.raises(svc.ExportUnavailable) as info:
        svc.export_download(actor=marketer, export_id=export.id)
    assert info.value.code == "export_downloaded"
    export.refresh_from_db()
    assert export.payload is None and export.downloaded_at is not None
    entry = AuditEntry.objects.get(action="segment.export")
    assert entry.details["size"] == 3
    assert AuditEntry.objects.filter(action="export.download", outcome="ok").count() == 1
    assert AuditEntry.objects.filter(action="export.download", outcome="denied").count() == 1


def test_expired_exports_are_shredded(contacts, shanghai, marketer):
    export = build(marketer, shanghai)
    assert svc.exports_expire(now=export.expires_at + dt.timedelta(seconds=1)) == 1
    export.refresh_from_db()
    assert export.status == "expired" and export.payload is None
    with pytest.raises(svc.ExportUnavailable):
        svc.export_download(actor=marketer, export_id=export.id)


def test_export_build_is_idempotent(contacts, shanghai, marketer):
    export = build(marketer, shanghai)
    again = svc.export_build(export_id=export.id)
    assert again.status == "ready"
    assert AuditEntry.objects.filter(action="segment.export").count() == 1


@pytest.mark.parametrize(
    ("purpose", "channel", "path"),
    [("marketing_sms", "fax", "$.channel"), ("nope", "sms", "$.purpose"), ("marketing_sms", "email", "$.channel")],
)
def test_export_request_validation(shanghai, marketer, purpose, channel, path):
    with pytest.raises(svc.SegmentError) as info:
        svc.export_create(actor=marketer, segment_id=shanghai.id, purpose=purpose, channel=channel)
    assert info.value.path == path
    assert not SegmentExport.objects.exists()


def test_seed_demo_segments_step_is_idempotent(db):
    from cdp.demo import DEMO_SEGMENTS, DEMO_STEPS, seed_segments, seed_traits

    assert [label for label, _ in DEMO_STEPS].index("segments") > [label for label, _ in DEMO_STEPS].index("customers")
    seed_traits()
    assert seed_segments().startswith("3 segments created")
    assert seed_segments().startswith("0 segments created")
    assert set(Segment.objects.values_list("name", flat=True)) == {name for name, _ in DEMO_SEGMENTS}


def test_scheduled_refresh_rebuilds_and_expires(town, marketer, settings):
    from cdp.tasks import segment_materialise_task, segments_refresh_task

    assert settings.CELERY_BEAT_SCHEDULE["segments-refresh"]["task"] == "cdp.segments_refresh"
    segment = make_segment(marketer, {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"})
    assert segment_materialise_task(segment.id) == segment.version  # never the exact size
    assert members(segment) == {town["ann"].id, town["bob"].id}
    Profile.objects.filter(id=town["bob"].id).update(status="erased")
    assert segments_refresh_task() == 1
    assert members(segment) == {town["ann"].id}
