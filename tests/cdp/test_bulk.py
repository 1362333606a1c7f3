"""cdp.bulk: COPY inserts, array updates and the `in_array` lookup store exactly what the ORM would.

They run on both backends: on PostgreSQL the fast statements, elsewhere Django's own methods.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdp.bulk import copy_insert, fast_bulk_update
from cdp.models import Event, Profile, ProfileStatus, Source
from identity.models import Identifier

# Strings that break naive quoting: COPY's tab, newline and backslash; array-literal braces,
# quotes and commas; SQL quotes; non-Latin text.
AWKWARD = ["plain", "tab\there", "new\nline", "back\\slash", '{"a",b}', "it's", "逗号,分号;", "NULL", ""]


@pytest.fixture
def source(db):
    return Source.objects.create(name="bulk-tests", channel="web")


@pytest.mark.django_db
def test_copy_insert_stores_what_bulk_create_stores(source):
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    profiles = [
        Profile(id=uuid.uuid4(), vault=b"\x00\x01sealed\xff", attributes={"tier": t, "n": i}, first_seen_at=when)
        for i, t in enumerate(AWKWARD)
    ]
    copy_insert(Profile, profiles)
    events = [
        Event(
            profile_id=p.id,
            source=source,
            message_id=f"m-{i}-{t}",
            type="track",
            name=t,
            channel="web",
            occurred_at=when + timedelta(seconds=i),
            properties={"label": t, "list": [1, 2.5, None, True]},
            sealed_properties=b"\\x00" if i % 2 else None,
        )
        for i, (p, t) in enumerate(zip(profiles, AWKWARD, strict=True))
    ]
    copy_insert(Event, events)

    stored = {p.id: p for p in Profile.objects.all()}
    assert set(stored) == {p.id for p in profiles}
    for p in profiles:
        row = stored[p.id]
        assert bytes(row.vault) == b"\x00\x01sealed\xff"
        assert row.attributes == p.attributes
        assert row.first_seen_at == when
        assert row.status == ProfileStatus.ACTIVE  # the field default
        assert row.created_at is not None and row.updated_at is not None  # auto_now(_add) applied
    rows = {e.message_id: e for e in Event.objects.all()}
    assert len(rows) == len(events)
    for e in events:
        row = rows[e.message_id]
        assert (row.name, row.properties, row.occurred_at) == (e.name, e.properties, e.occurred_at)
        assert (bytes(row.sealed_properties) if row.sealed_properties is not None else None) == e.sealed_properties
        assert row.received_at is not None


@pytest.mark.django_db
def test_copy_insert_of_nothing_writes_nothing():
    copy_insert(Profile, [])
    assert not Profile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_fails_the_whole_insert(source):
    from django.db import IntegrityError, transaction

    profile = Profile.objects.create()
    first = Event(
        profile=profile, source=source, message_id="same", type="track", channel="web", occurred_at=datetime.now(UTC)
    )
    copy_insert(Event, [first])
    again = [
        Event(profile=profile, source=source, message_id=m, type="track", channel="web", occurred_at=datetime.now(UTC))
        for m in ("new-1", "same", "new-2")
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_insert(Event, again)
    assert list(Event.objects.values_list("message_id", flat=True)) == ["same"]


@pytest.mark.django_db
def test_fast_bulk_update_sets_each_row_and_nothing_else():
    profiles = [Profile.objects.create(attributes={"keep": i}, journey_stage="") for i in range(5)]
    untouched = Profile.objects.create(attributes={"keep": "me"})
    survivor = profiles[0]
    for i, p in enumerate(profiles[1:], start=1):
        p.attributes = {"city": AWKWARD[i], "n": i}
        p.vault = bytes([i]) * 3
        p.status, p.merged_into_id = ProfileStatus.MERGED, survivor.id
        p.journey_stage = "purchase"
    fast_bulk_update(Profile, profiles[1:], ["attributes", "vault", "status", "merged_into", "journey_stage"])

    for i, p in enumerate(profiles[1:], start=1):
        row = Profile.objects.get(pk=p.pk)
        assert row.attributes == {"city": AWKWARD[i], "n": i}
        assert bytes(row.vault) == bytes([i]) * 3
        assert (row.status, row.merged_into_id, row.journey_stage) == (ProfileStatus.MERGED, survivor.id, "purchase")
    assert Profile.objects.get(pk=survivor.pk).attributes == {"keep": 0}
    assert Profile.objects.get(pk=untouched.pk).attributes == {"keep": "me"}


@pytest.mark.django_db
def test_in_array_matches_like_in(source):
    profiles = [Profile.objects.create() for _ in range(3)]
    for i, text in enumerate(AWKWARD):
        Identifier.objects.create(
            id_type="external_id",
            blind_index=f"bi-{text}",
            sealed_value=b"x",
            profile=profiles[i % 3],
            origin_profile=profiles[i % 3],
            first_seen_at=datetime.now(UTC),
            last_seen_at=datetime.now(UTC),
        )
    wanted = {f"bi-{t}" for t in AWKWARD[::2]} | {"bi-absent"}
    by_array = set(Identifier.objects.filter(blind_index__in_array=wanted).values_list("blind_index", flat=True))
    by_in = set(Identifier.objects.filter(blind_index__in=wanted).values_list("blind_index", flat=True))
    assert by_array == by_in == {f"bi-{t}" for t in AWKWARD[::2]}
    # Foreign keys (UUIDs) too, and the empty list matches nothing.
    pids = {profiles[0].id, uuid.uuid4()}
    assert set(Identifier.objects.filter(profile_id__in_array=pids).values_list("profile_id", flat=True)) == {
        profiles[0].id
    }
    assert not Identifier.objects.filter(blind_index__in_array=[]).exists()


def test_new_row_has_the_models_defaults_and_refuses_unknown_fields():
    from cdp.bulk import new_row

    a, b = new_row(Event, message_id="x"), new_row(Event, message_id="y")
    assert (a.pk, a.name, a.sealed_properties, a.properties) == (None, "", None, {})
    a.properties["k"] = 1
    assert b.properties == {}  # a callable default is called for every row, never shared
    profile = new_row(Profile, id=uuid.uuid4())
    assert profile.pk == profile.id and profile.status == ProfileStatus.ACTIVE
    with pytest.raises(TypeError, match="no field"):
        new_row(Event, profile=None)  # by attname (profile_id), as the COPY writes it


@pytest.mark.django_db
def test_rows_are_written_like_instances(source):
    from cdp.bulk import new_row

    profile = new_row(Profile, id=uuid.uuid4(), attributes={"tier": "gold"})
    copy_insert(Profile, [profile])
    event = new_row(
        Event,
        profile_id=profile.id,
        source_id=source.pk,
        message_id="row-1",
        type="track",
        channel="web",
        occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
        properties={"amount": 3},
    )
    copy_insert(Event, [event])
    stored = Event.objects.get(message_id="row-1")
    assert (stored.profile_id, stored.properties, stored.name) == (profile.id, {"amount": 3}, "")
    assert stored.received_at is not None  # auto_now_add applied to the record too
    assert Profile.objects.get(pk=profile.id).attributes == {"tier": "gold"}
    profile.attributes = {"tier": "silver"}
    fast_bulk_update(Profile, [profile], ["attributes"])
    assert Profile.objects.get(pk=profile.id).attributes == {"tier": "silver"}


@pytest.mark.django_db
def test_json_fields_hold_any_json_value_as_django_would(source):
    """A JSON field's str, bool or number is a JSON document of that type, never column text."""
    profile = Profile.objects.create()
    rows = [
        Event(profile=profile, source=source, message_id=f"j{i}", type="track", channel="web",
              occurred_at=datetime.now(UTC), properties=value)
        for i, value in enumerate(['{"a": 1}', "plain", True, 7, [1, "x"]])
    ]  # fmt: skip
    copy_insert(Event, rows)
    stored = dict(Event.objects.values_list("message_id", "properties"))
    assert stored == {"j0": '{"a": 1}', "j1": "plain", "j2": True, "j3": 7, "j4": [1, "x"]}
    for value in ("text", False, 2.5, '{"b": 2}'):
        profile.attributes = value
        fast_bulk_update(Profile, [profile], ["attributes"])
        assert Profile.objects.get(pk=profile.pk).attributes == value
