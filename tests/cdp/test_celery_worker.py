"""A task through a real Redis broker and a real worker process started by the test."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from celery import Celery

from cdp.tasks import ping
from tests.workers import celery_worker, worker_output

# Celery lets CELERY_BROKER_URL in the environment override a client's broker argument, so the
# test uses that broker when it is Redis (a unique queue keeps it apart from other workers).
_ENV_BROKER = os.environ.get("CELERY_BROKER_URL", "")
REDIS = _ENV_BROKER if _ENV_BROKER.startswith("redis://") else "redis://127.0.0.1:6379/14"


@pytest.mark.redis
@pytest.mark.slow
def test_ping_runs_on_a_real_worker_through_redis(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with celery_worker({"CELERY_BROKER_URL": REDIS, "CELERY_RESULT_BACKEND": REDIS}, queue=queue) as worker:
        client = Celery("test-client", broker=REDIS, backend=REDIS, set_as_current=False)
        started = time.monotonic()
        result = client.send_task("cdp.ping", queue=queue)
        try:
            assert result.get(timeout=60) == "pong"
        except Exception:
            pytest.fail("the worker did not answer; its output:\n" + worker_output(worker))
        assert time.monotonic() - started < 60


def test_eager_mode_without_a_broker(settings):
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured; eager mode is the embedded default only")
    assert ping.delay().get() == "pong"
