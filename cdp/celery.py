"""The one Celery app. Without CELERY_BROKER_URL, tasks run eagerly in-process (settings)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

app = Celery("cdp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _connect_cache_clearing(sender: Celery, **kwargs: object) -> None:
    """Unwrapped data keys live only as long as the task that needed them."""
    from celery.signals import task_postrun

    from privacy.crypto.datakeys import clear_data_key_cache

    task_postrun.connect(lambda **_: clear_data_key_cache(), weak=False)
