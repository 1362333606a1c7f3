"""Re-wrap every data key under the active key-encryption key (KEK rotation)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cdp.actor import Actor
from cdp.keys import load_key_material, save_dev_keks
from privacy.crypto.keyring import get_kms, reset_kms
from privacy.crypto.services import DEFAULT_BATCH_SIZE, kek_keys_using, kek_rotate, keys_to_rewrap


def dev_key_file() -> Path:
    """The development key file, located as cdp/settings.py locates it."""
    return Path(os.environ.get("CDP_DEV_KEY_FILE", Path(settings.VAR_DIR) / "dev-keys.json"))


class Command(BaseCommand):
    help = (
        "Re-wrap every data key that is not under the active KEK, in batches; the data itself is not "
        "re-encrypted. Production: add the new version to CDP_KEKS, set CDP_KEK_ACTIVE to it, restart every "
        "process, then run this. Development: --generate adds a new KEK version to the development key file "
        "and makes it active first. Safe to interrupt and run again: it continues with what is left. "
        "--check-retire VERSION exits non-zero while any data key still uses that KEK."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate",
            action="store_true",
            help="development only: generate a new KEK version into the dev key file and make it active",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="data keys per transaction")
        parser.add_argument(
            "--max-batches", type=int, default=None, help="stop after this many batches (run again to continue)"
        )
        parser.add_argument(
            "--check-retire",
            type=int,
            metavar="VERSION",
            default=None,
            help="only check whether KEK VERSION still wraps any data key (exit 1 if it does)",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, generate, batch_size, max_batches, check_retire, no_progress, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if max_batches is not None and max_batches < 1:
            raise CommandError("--max-batches must be at least 1")
        if check_retire is not None:
            if generate:
                raise CommandError("--check-retire only checks; it cannot be combined with --generate")
            return self._check_retire(check_retire)
        if generate:
            self._generate()
        kms = get_kms()
        target = kms.active_version
        todo = keys_to_rewrap(target).count()
        self.stdout.write(f"Active KEK: v{target}. Data keys to re-wrap: {todo}.")
        with tqdm(total=todo, unit="key", desc="rotate_kek", disable=no_progress) as bar:
            try:
                result = kek_rotate(
                    actor=Actor.system("rotate_kek"),
                    batch_size=batch_size,
                    max_batches=max_batches,
                    progress=bar.update,
                    kms=kms,
                )
            except KeyboardInterrupt:
                raise CommandError(
                    "interrupted; the batches committed so far are kept. Run rotate_kek again to continue."
                ) from None
        self.stdout.write(
            f"Re-wrapped {result.rewrapped} data keys to KEK v{target} in {result.batches} batches; "
            f"failed: {result.failed}; still under another KEK: {result.remaining}."
        )
        if result.failed:
            raise CommandError(
                f"{result.failed} data keys could not be unwrapped (their KEK is missing from CDP_KEKS or wrong); "
                "see crypto_status"
            )
        if result.remaining:
            self.stdout.write("Run rotate_kek again to continue.")
        else:
            old = [v for v in kms.versions() if v != target]
            if old:
                self.stdout.write(
                    f"No data key uses KEK {', '.join(f'v{v}' for v in old)} any more: "
                    "confirm with --check-retire VERSION, then remove it from CDP_KEKS."
                )

    def _check_retire(self, version: int) -> None:
        kms = get_kms()
        if version == kms.active_version:
            raise CommandError(f"KEK v{version} is the active version; it cannot be retired")
        using = kek_keys_using(version=version)
        if using:
            raise CommandError(f"{using} data keys still use KEK v{version}: run rotate_kek before retiring it")
        self.stdout.write(
            f"No data key uses KEK v{version}: it can be removed from CDP_KEKS once every process runs with "
            f"the active version v{kms.active_version}."
        )

    def _generate(self) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "--generate is for development. In production add the new version to CDP_KEKS (from your KMS), "
                "set CDP_KEK_ACTIVE to it, restart every process, then run rotate_kek."
            )
        if os.environ.get("CDP_KEKS") or os.environ.get("CDP_KEK_ACTIVE"):
            raise CommandError(
                "CDP_KEKS/CDP_KEK_ACTIVE come from the environment, which overrides the development key file: "
                "add the new version there instead of using --generate"
            )
        path = dev_key_file()
        keks = dict(settings.KEYS.keks)
        version = max(keks) + 1
        keks[version] = secrets.token_bytes(32)
        save_dev_keks(path, keks, version)
        settings.KEYS = load_key_material(production=False, environ=dict(os.environ), dev_key_file=path)
        reset_kms()
        self.stdout.write(
            f"Generated KEK v{version} into {path} and made it active. Restart running servers and workers "
            "so that they can open keys wrapped by it."
        )
