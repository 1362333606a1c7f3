"""Key material: production refuses to start without it; development generates it once."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cdp.keys import REQUIRED_ENV, load_key_material

ROOT = Path(__file__).resolve().parent.parent


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV and not k.startswith("CDP_")}
    env.update({"CDP_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, **extra)
    env.pop("CELERY_BROKER_URL", None)
    return env


def _production_keys() -> dict[str, str]:
    def b64(n: int) -> str:
        return base64.b64encode(os.urandom(n)).decode()

    return {
        "DJANGO_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(48)).decode(),
        "CDP_KEKS": f"1:{b64(32)}",
        "CDP_BLIND_INDEX_PEPPER": b64(32),
        "CDP_HASH_KEY": b64(32),
        "CDP_AUDIT_SIGNING_KEY": b64(32),
    }


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_keys(tmp_path):
    result = _manage(_clean_env(tmp_path, CDP_ENV="production", ALLOWED_HOSTS="cdp.example.com"), "check")
    assert result.returncode != 0
    assert "refuses to start without key material" in result.stderr
    for name in REQUIRED_ENV:
        assert name in result.stderr
    assert not (tmp_path / "dev-keys.json").exists(), "production must never generate keys"


def test_production_with_keys_passes_check_deploy(tmp_path):
    env = _clean_env(tmp_path, CDP_ENV="production", ALLOWED_HOSTS="cdp.example.com", **_production_keys())
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    # No key value ever reaches the output.
    for name in REQUIRED_ENV:
        assert env[name] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"CDP_KEKS": "1:not-base64!"}, "not valid base64"),
        ({"CDP_KEKS": "one:AAAA"}, "VERSION:BASE64"),
        ({"CDP_BLIND_INDEX_PEPPER": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"CDP_KEK_ACTIVE": "7"}, "CDP_KEK_ACTIVE"),
        ({"DJANGO_SECRET_KEY": "too-short"}, "at least 50"),
    ],
)
def test_production_rejects_malformed_keys(tmp_path, override, message):
    environ = {**_production_keys(), **override}
    with pytest.raises(ImproperlyConfigured, match=message):
        load_key_material(production=True, environ=environ, dev_key_file=tmp_path / "k.json")


def test_development_generates_keys_once_and_keeps_them(tmp_path):
    path = tmp_path / "var" / "dev-keys.json"
    first = load_key_material(production=False, environ={}, dev_key_file=path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_key_material(production=False, environ={}, dev_key_file=path)
    assert first == second
    assert first.keks[1] and len(first.blind_index_pepper) == 32
    # The environment still wins over the file.
    env_pepper = base64.b64encode(b"p" * 32).decode()
    third = load_key_material(production=False, environ={"CDP_BLIND_INDEX_PEPPER": env_pepper}, dev_key_file=path)
    assert third.blind_index_pepper == b"p" * 32


def test_key_material_repr_hides_secrets(tmp_path):
    keys = load_key_material(production=False, environ={}, dev_key_file=tmp_path / "k.json")
    text = repr(keys)
    assert keys.secret_key not in text
    assert base64.b64encode(keys.keks[1]).decode() not in text


def test_keys_file_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "var/" in ignored
