"""A DP query may name a segment: its current definition is the population."""

from __future__ import annotations

import pytest

from cdp.actor import Actor, ActorKind, Role
from cdp.services.segments import segment_create, segment_update
from privacy.dp import bounding
from privacy.dp.spec import spec_parse
from tests.factories import ProfileFactory, dp_registry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("analytics_legitimate_interests")]
MARKETER = Actor(kind=ActorKind.API_KEY, actor_id="key:mkt", role=Role.MARKETING)
SHANGHAI = {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"}


def test_segment_population_matches_its_filter_tree_and_versions_the_cache_key():
    dp_registry()
    for city in ["Shanghai", "Shanghai", "Beijing"]:
        ProfileFactory(attributes={"city": city})
    segment = segment_create(actor=MARKETER, name="sh", definition=SHANGHAI)

    by_segment = spec_parse({"metric": "count", "epsilon": 1, "segment_id": segment.id})
    by_tree = spec_parse({"metric": "count", "epsilon": 1, "population": SHANGHAI})
    assert bounding.exact_people(by_segment) == bounding.exact_people(by_tree) == {(): [2.0]}

    segment_update(
        actor=MARKETER,
        segment_id=segment.id,
        definition={"type": "trait", "key": "city", "op": "eq", "value": "Beijing"},
    )
    changed = spec_parse({"metric": "count", "epsilon": 1, "segment_id": segment.id})
    assert bounding.exact_people(changed) == {(): [1.0]}
    assert changed.spec_hash != by_segment.spec_hash
