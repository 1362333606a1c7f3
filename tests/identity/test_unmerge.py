"""A steward undoes a wrong merge: everything goes back, also what arrived after the merge."""

from __future__ import annotations

import pytest

from cdp.actor import PermissionDenied
from cdp.models import Event, Profile, ProfileStatus
from cdp.services.profiles import UnmergeError, profile_read, profile_unmerge
from identity.models import Identifier, MergeEvidence
from privacy.audit.models import AuditEntry
from privacy.crypto import open_sealed
from tests.identity.conftest import msg

pytestmark = pytest.mark.django_db


def vault(profile):
    profile.refresh_from_db()
    return open_sealed(subject_id=profile.id, field="traits", blob=profile.vault) if profile.vault else {}


def test_unmerge_after_later_messages_restores_both_sides(send, make_actor):
    send(msg(ids={"email": "anna@example.com"}, traits={"name": "Anna"}, ts="2026-01-01T00:00:00Z"))
    send(msg(ids={"phone": "13900001111"}, traits={"name": "Bert", "city": "Berlin"}, ts="2026-01-02T00:00:00Z"))
    anna = Profile.objects.order_by("created_at").first()
    bert = Profile.objects.exclude(id=anna.id).get()
    # A wrong alias glues them together.
    send(msg("alias", ids={"email": "anna@example.com", "phone": "13900001111"}, ts="2026-01-03T00:00:00Z"))
    bert.refresh_from_db()
    assert bert.status == ProfileStatus.MERGED and bert.merged_into_id == anna.id
    # Later messages: Bert's phone with a new cookie and a trait, Anna's email with a purchase.
    send(
        msg(
            "track",
            ids={"phone": "13900001111", "cookie_id": "ck-bert"},
            event="purchase",
            properties={"amount": 10},
            traits={"name": "Bert B."},
            ts="2026-01-04T00:00:00Z",
        )
    )
    send(msg("track", ids={"email": "anna@example.com"}, event="page_view", ts="2026-01-05T00:00:00Z"))
    assert vault(anna) == {"name": "Bert B."}  # newest wins while merged: the harm a wrong merge does
    assert Event.objects.filter(profile=anna).count() == 5

    steward = make_actor("steward", purpose="data_quality")
    result = profile_unmerge(actor=steward, profile_id=bert.id)
    assert result["restored"] == str(bert.id) and result["survivor"] == str(anna.id)
    bert.refresh_from_db()
    assert bert.status == ProfileStatus.ACTIVE and bert.merged_into_id is None
    assert vault(anna) == {"name": "Anna"}
    assert vault(bert) == {"name": "Bert B."} and bert.attributes == {"city": "Berlin"}
    assert set(Identifier.objects.filter(profile=bert).values_list("id_type", flat=True)) == {"phone", "cookie_id"}
    assert set(Identifier.objects.filter(profile=anna).values_list("id_type", flat=True)) == {"email"}
    bert_events = Event.objects.filter(profile=bert)
    # Bert's identify, the alias (its best identifier, the phone, is Bert's) and the later purchase.
    assert bert_events.count() == 3 and bert.journey_stage == "purchase"
    assert Event.objects.filter(profile=anna).count() == 2
    assert anna.journey_stage == "" or Profile.objects.get(id=anna.id).journey_stage == "awareness"
    assert MergeEvidence.objects.get().undone_at is not None
    assert AuditEntry.objects.filter(action="profile.unmerge", subject_id=bert.id).count() == 1
    # The undone pair does not merge again on the next message naming both.
    send(msg("alias", ids={"email": "anna@example.com", "phone": "13900001111"}, ts="2026-01-06T00:00:00Z"))
    assert Profile.objects.filter(status=ProfileStatus.ACTIVE).count() == 2
    view = profile_read(actor=steward, profile_id=bert.id)
    assert view.merges[0]["undone_at"] is not None


def test_unmerge_needs_a_steward_a_purpose_and_a_merge(send, make_actor):
    send(msg(ids={"email": "x@example.com"}))
    profile = Profile.objects.get()
    with pytest.raises(PermissionDenied):
        profile_unmerge(actor=make_actor("compliance", purpose="audit"), profile_id=profile.id)
    with pytest.raises(PermissionDenied):
        profile_unmerge(actor=make_actor("steward"), profile_id=profile.id)
    with pytest.raises(UnmergeError):
        profile_unmerge(actor=make_actor("steward", purpose="data_quality"), profile_id=profile.id)
