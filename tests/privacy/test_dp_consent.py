"""DP populations obey consent enforcement: only people the analytics purpose allows count."""

from __future__ import annotations

import numpy as np
import pytest

from cdp.actor import Actor, Role
from consent.models import ProcessingRestriction, Purpose, RestrictionKind
from consent.services import consent_record
from privacy.dp import bounding
from privacy.dp.engine import dp_query_release
from privacy.dp.spec import spec_parse
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def _people() -> float:
    return bounding.exact_people(spec_parse({"metric": "count", "epsilon": 1}))[()][0]


@pytest.fixture
def people(consent_purposes):
    """Five active profiles; two granted analytics consent."""
    profiles = ProfileFactory.create_batch(5)
    for profile in profiles[:2]:
        consent_record(
            actor=Actor.system("tests"), subject_id=profile.id, purpose="analytics", event="granted", method="api"
        )
    return profiles


def test_consent_based_analytics_counts_only_people_who_granted(people):
    assert Purpose.objects.get(code="analytics").legal_basis == "consent"
    assert _people() == 2.0


def test_withdrawal_takes_effect_for_the_next_query(people):
    consent_record(
        actor=Actor.system("tests"), subject_id=people[0].id, purpose="analytics", event="withdrawn", method="api"
    )
    assert _people() == 1.0


def test_restricted_and_objecting_people_drop_out(people, analytics_legitimate_interests):
    assert _people() == 5.0  # legitimate interests: nobody needs a grant
    ProcessingRestriction.objects.create(subject=people[0], kind=RestrictionKind.RESTRICTION)
    ProcessingRestriction.objects.create(
        subject=people[1], kind=RestrictionKind.OBJECTION, purpose=Purpose.objects.get(code="analytics")
    )
    assert _people() == 3.0


def test_released_count_excludes_people_without_consent(consent_purposes):
    ProfileFactory.create_batch(300)  # nobody consented to analytics
    actor = Actor(kind="api_key", actor_id="key:dp-consent", role=Role.ANALYST)
    release = dp_query_release(
        actor=actor, spec={"metric": "count", "epsilon": 2}, random_state=np.random.RandomState(7)
    )
    [row] = release.result["rows"]
    [measure] = row["values"].values()
    assert abs(measure["value"]) < 30, "300 people without consent must not be counted"
