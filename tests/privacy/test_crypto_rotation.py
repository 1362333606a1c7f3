"""KEK rotation: every value stays readable, also across an interruption and a resume."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from cdp.actor import PermissionDenied, Role
from cdp.models import Profile
from privacy.audit.models import AuditEntry
from privacy.crypto import UnknownKeyVersion, clear_data_key_cache, traits_open, traits_seal
from privacy.crypto.models import SubjectKey
from privacy.crypto.services import crypto_status, kek_keys_using, kek_rotate, subject_shred
from tests.factories import ProfileFactory

K1, K2, K3 = os.urandom(32), os.urandom(32), os.urandom(32)


class SimulatedCrash(Exception):
    """Raised from inside a batch, as a killed process or Ctrl-C would interrupt it."""


def _profiles(n: int) -> dict[uuid.UUID, tuple[dict, bytes]]:
    """n profiles with sealed traits; returns {id: (traits, vault bytes)}."""
    stored = {}
    for i in range(n):
        profile = ProfileFactory()
        traits = {"name": f"测试用户{i}", "email": f"user{i}@example.com", "n": i}
        profile.vault = traits_seal(profile_id=profile.id, traits=traits)
        profile.save(update_fields=["vault"])
        stored[profile.id] = (traits, bytes(profile.vault))
    return stored


def _assert_all_readable(stored: dict[uuid.UUID, tuple[dict, bytes]]) -> None:
    clear_data_key_cache()
    for profile in Profile.objects.filter(id__in=stored):
        traits, vault = stored[profile.id]
        assert bytes(profile.vault) == vault, "rotation must not re-encrypt (or touch) the data"
        assert traits_open(profile_id=profile.id, blob=profile.vault) == traits


def _versions() -> dict[int, int]:
    return crypto_status().data_keys


@pytest.fixture
def v1_data(kek_ring, db):
    """Profiles sealed while v1 was the only KEK; then v2 is added and made active."""
    kek_ring({1: K1}, active=1)
    stored = _profiles(23)
    kek_ring({1: K1, 2: K2}, active=2)
    return stored


def test_rotation_rewraps_every_key_and_the_old_kek_can_be_retired(v1_data, kek_ring, system_actor):
    assert _versions() == {1: 23}
    result = kek_rotate(actor=system_actor, batch_size=5)
    assert (result.rewrapped, result.failed, result.remaining, result.batches) == (23, 0, 0, 5)
    assert result.from_versions == {1: 23}
    assert _versions() == {2: 23}
    assert kek_keys_using(version=1) == 0
    kek_ring({2: K2}, active=2)  # v1 retired
    _assert_all_readable(v1_data)
    entry = AuditEntry.objects.filter(action="key.rotate").get()
    assert entry.outcome == "ok" and entry.object_id == "2"
    assert entry.details == {
        "to_version": 2,
        "from_versions": {"1": 23},
        "rewrapped": 23,
        "failed": 0,
        "batches": 5,
        "remaining": 0,
        "interrupted": False,
    }
    # Idempotent: nothing left to do.
    assert kek_rotate(actor=system_actor).rewrapped == 0


@pytest.mark.django_db(transaction=True)
def test_interrupted_rotation_resumes_and_loses_nothing(kek_ring, system_actor):
    kek_ring({1: K1}, active=1)
    stored = _profiles(30)
    kek_ring({1: K1, 2: K2}, active=2)
    batches_seen = []

    def crash_in_third_batch(rows: int) -> None:
        batches_seen.append(rows)
        if len(batches_seen) == 3:
            raise SimulatedCrash("killed half-way through a batch")

    with pytest.raises(SimulatedCrash):
        kek_rotate(actor=system_actor, batch_size=7, progress=crash_in_third_batch)
    # Two batches committed, the third rolled back as a whole.
    assert _versions() == {1: 16, 2: 14}
    _assert_all_readable(stored)  # mixed state: both KEKs still in the ring, all readable
    crashed = AuditEntry.objects.get(action="key.rotate")
    assert crashed.outcome == "error"
    assert crashed.details["interrupted"] is True
    assert (crashed.details["rewrapped"], crashed.details["remaining"]) == (14, 16)

    resumed = kek_rotate(actor=system_actor, batch_size=7)
    assert (resumed.rewrapped, resumed.remaining, resumed.from_versions) == (16, 0, {1: 16})
    kek_ring({2: K2}, active=2)
    _assert_all_readable(stored)


def test_max_batches_stops_early_and_a_second_run_continues(v1_data, kek_ring, system_actor):
    first = kek_rotate(actor=system_actor, batch_size=10, max_batches=1)
    assert (first.rewrapped, first.remaining) == (10, 13)
    second = kek_rotate(actor=system_actor, batch_size=10)
    assert (second.rewrapped, second.remaining) == (13, 0)
    kek_ring({2: K2}, active=2)
    _assert_all_readable(v1_data)


def test_rotation_across_three_versions(v1_data, kek_ring, system_actor):
    kek_rotate(actor=system_actor, batch_size=4, max_batches=2)  # 8 on v2, 15 on v1
    kek_ring({1: K1, 2: K2, 3: K3}, active=3)
    result = kek_rotate(actor=system_actor, batch_size=4)
    assert result.from_versions == {1: 15, 2: 8}
    assert _versions() == {3: 23}
    kek_ring({3: K3}, active=3)
    _assert_all_readable(v1_data)


def test_shredded_keys_are_not_rewrapped_and_stay_shredded(v1_data, kek_ring, system_actor):
    victim = next(iter(v1_data))
    subject_shred(actor=system_actor, subject_id=victim)
    result = kek_rotate(actor=system_actor)
    assert result.rewrapped == 22
    row = SubjectKey.objects.get(subject_id=victim)
    assert row.wrapped is None and row.shredded_at is not None
    assert crypto_status().shredded == 1
    assert kek_keys_using(version=1) == 0  # a shredded key does not hold the old KEK back


def test_keys_under_a_missing_kek_are_counted_as_failed_and_left_alone(v1_data, kek_ring, system_actor):
    kek_ring({2: K2, 3: K3}, active=3)  # v1 was dropped before rotating: an operator error
    result = kek_rotate(actor=system_actor, batch_size=5)
    assert (result.rewrapped, result.failed, result.remaining) == (0, 23, 23)
    assert AuditEntry.objects.get(action="key.rotate").outcome == "error"
    assert crypto_status().unknown_versions == [1]
    kek_ring({1: K1, 2: K2, 3: K3}, active=3)  # put v1 back: nothing was lost
    assert kek_rotate(actor=system_actor).rewrapped == 23
    _assert_all_readable(v1_data)


@pytest.mark.parametrize("role", [Role.STEWARD, Role.MARKETING, Role.ANALYST, Role.COMPLIANCE])
def test_only_admin_or_system_may_rotate(v1_data, make_actor, role):
    with pytest.raises(PermissionDenied):
        kek_rotate(actor=make_actor(role))
    assert _versions() == {1: 23}
    assert AuditEntry.objects.get(action="key.rotate").outcome == "denied"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_rotations_share_the_work(kek_ring, system_actor):
    kek_ring({1: K1}, active=1)
    stored = _profiles(60)
    kek_ring({1: K1, 2: K2}, active=2)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(kek_rotate(actor=system_actor, batch_size=3))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.rewrapped for r in results) == 60  # each key re-wrapped exactly once
    assert _versions() == {2: 60}
    kek_ring({2: K2}, active=2)
    _assert_all_readable(stored)


# --- the commands -----------------------------------------------------------------------------


def _call(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_rotate_kek_command_and_check_retire(v1_data, kek_ring):
    with pytest.raises(CommandError, match="23 data keys still use KEK v1"):
        _call("rotate_kek", "--check-retire", "1")
    with pytest.raises(CommandError, match="active version"):
        _call("rotate_kek", "--check-retire", "2")
    out = _call("rotate_kek", "--no-progress", "--batch-size", "10", "--max-batches", "1")
    assert "Data keys to re-wrap: 23" in out and "Re-wrapped 10 data keys to KEK v2" in out
    assert "Run rotate_kek again to continue" in out
    out = _call("rotate_kek", "--no-progress", "--batch-size", "10")
    assert "Re-wrapped 13 data keys" in out and "still under another KEK: 0" in out
    assert "No data key uses KEK v1" in _call("rotate_kek", "--check-retire", "1")
    assert AuditEntry.objects.filter(action="key.rotate", actor_id="task:rotate_kek").count() == 2
    kek_ring({2: K2}, active=2)
    _assert_all_readable(v1_data)


def test_rotate_kek_command_fails_loudly_when_keys_do_not_open(v1_data, kek_ring):
    kek_ring({2: K2}, active=2)
    with pytest.raises(CommandError, match="23 data keys could not be unwrapped"):
        _call("rotate_kek", "--no-progress")


@pytest.mark.parametrize("args", [("--batch-size", "0"), ("--max-batches", "0"), ("--generate", "--check-retire", "1")])
def test_rotate_kek_refuses_bad_arguments(db, args):
    with pytest.raises(CommandError):
        _call("rotate_kek", "--no-progress", *args)
    assert not AuditEntry.objects.exists()


def test_rotate_kek_generate_is_refused_when_the_environment_holds_the_keks(db, monkeypatch):
    monkeypatch.setenv("CDP_KEKS", "1:" + "A" * 44)
    with pytest.raises(CommandError, match="come from the environment"):
        _call("rotate_kek", "--generate", "--no-progress")


def test_crypto_status_command(v1_data, kek_ring, system_actor):
    subject_shred(actor=system_actor, subject_id=next(iter(v1_data)))
    kek_rotate(actor=system_actor, batch_size=10, max_batches=1)
    status = json.loads(_call("crypto_status", "--json"))
    assert status == {
        "kek_versions": [1, 2],
        "active_version": 2,
        "data_keys": {"1": 12, "2": 10},
        "to_rewrap": 12,
        "shredded": 1,
        "unknown_versions": [],
    }
    text = _call("crypto_status")
    assert "Active KEK: v2" in text and "v1: 12" in text and "v2: 10  (active)" in text
    assert "Shredded (erased) subjects: 1" in text and "Waiting for rotate_kek: 12" in text
    kek_ring({2: K2}, active=2)
    assert "NOT IN KEY RING" in _call("crypto_status")


def test_opening_after_retiring_too_early_names_the_missing_version(v1_data, kek_ring):
    kek_ring({2: K2}, active=2)
    profile_id = next(iter(v1_data))
    with pytest.raises(UnknownKeyVersion, match="KEK version 1"):
        traits_open(profile_id=profile_id, blob=Profile.objects.get(pk=profile_id).vault)


# --- end to end in a scratch project directory: --generate writes the development key file ----

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _scratch_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDP_", "DJANGO_SECRET"))}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    env.update({"CDP_VAR_DIR": str(tmp_path)}, **extra)
    return env


def _manage(env: dict[str, str], *args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


SEAL_SCRIPT = (
    "import uuid; from privacy.crypto import seal; s = uuid.UUID(int=7); "
    "print(seal(subject_id=s, field='name', value='王小明').hex())"
)
OPEN_SCRIPT = (
    "import uuid, sys; from privacy.crypto import open_sealed; "
    "print(open_sealed(subject_id=uuid.UUID(int=7), field='name', blob=bytes.fromhex('{blob}')))"
)


@pytest.mark.slow
def test_generate_adds_a_kek_version_to_the_dev_key_file_and_rewraps(tmp_path):
    env = _scratch_env(tmp_path)
    assert _manage(env, "migrate", "--noinput", "-v0").returncode == 0
    sealed = _manage(env, "shell", "-c", SEAL_SCRIPT)
    assert sealed.returncode == 0, sealed.stderr
    blob = sealed.stdout.strip().splitlines()[-1]
    before = json.loads((tmp_path / "dev-keys.json").read_text())

    rotated = _manage(env, "rotate_kek", "--generate", "--no-progress")
    assert rotated.returncode == 0, rotated.stderr
    assert "Generated KEK v2" in rotated.stdout and "Re-wrapped 1 data keys to KEK v2" in rotated.stdout
    after = json.loads((tmp_path / "dev-keys.json").read_text())
    assert after["CDP_KEK_ACTIVE"] == "2"
    assert after["CDP_KEKS"].startswith(before["CDP_KEKS"] + ",2:")  # v1 kept until retired
    assert {k: v for k, v in after.items() if not k.startswith("CDP_KEK")} == {
        k: v for k, v in before.items() if not k.startswith("CDP_KEK")
    }
    secrets_ = [v for k, v in after.items() if k not in ("CDP_KEKS", "CDP_KEK_ACTIVE")]
    secrets_ += [part.split(":", 1)[1] for part in after["CDP_KEKS"].split(",")]
    for secret in secrets_:
        assert secret not in rotated.stdout + rotated.stderr

    opened = _manage(env, "shell", "-c", OPEN_SCRIPT.format(blob=blob))
    assert opened.stdout.strip().splitlines()[-1] == "王小明", opened.stderr
    status = _manage(env, "crypto_status", "--json")
    assert json.loads(status.stdout)["data_keys"] == {"2": 1}
    assert _manage(env, "rotate_kek", "--check-retire", "1").returncode == 0


def test_generate_is_refused_in_production(tmp_path):
    import base64

    def b64(n: int) -> str:
        return base64.b64encode(os.urandom(n)).decode()

    env = _scratch_env(
        tmp_path,
        CDP_ENV="production",
        ALLOWED_HOSTS="cdp.example.com",
        DJANGO_SECRET_KEY=b64(48),
        CDP_KEKS=f"1:{b64(32)}",
        CDP_BLIND_INDEX_PEPPER=b64(32),
        CDP_HASH_KEY=b64(32),
        CDP_AUDIT_SIGNING_KEY=b64(32),
    )
    result = _manage(env, "rotate_kek", "--generate", "--no-progress")
    assert result.returncode != 0
    assert "--generate is for development" in result.stderr
    assert not (tmp_path / "dev-keys.json").exists()
