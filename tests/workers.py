"""A real Celery worker process for tests that go through the broker (no mocks of either)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(env: dict[str, str], queue: str = "") -> Iterator[subprocess.Popen]:
    """Start `celery -A cdp worker` (solo pool) with `env`; stop it however the test ends.

    `worker_output(worker)` gives what it printed, for a failure message.
    """
    args = [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--pool", "solo"]
    args += ["-Q", queue] if queue else []
    args += ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    worker = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()


def worker_output(worker: subprocess.Popen) -> str:
    worker.terminate()
    return worker.communicate(timeout=15)[0]
