"""seed_demo's customers step goes through the real pipeline and is idempotent."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from cdp.models import Event, Profile


@pytest.mark.django_db
def test_seed_demo_ingests_customers_idempotently(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--customers", "40", "--seed", "5", "--no-progress")
    events, profiles = Event.objects.count(), Profile.objects.count()
    assert events > 40 and 40 <= profiles < events
    call_command("seed_demo", "--customers", "40", "--seed", "5", "--no-progress")
    assert Event.objects.count() == events and Profile.objects.count() == profiles
