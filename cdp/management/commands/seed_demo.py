"""Seed the demo: idempotent, with a progress bar. Each area adds its step to DEMO_STEPS."""

from __future__ import annotations

from collections.abc import Callable

from django.core.management.base import BaseCommand
from tqdm import tqdm

from cdp.demo import DEMO_STEPS


class Command(BaseCommand):
    help = (
        "Load demo data (sources, trait registry, API keys for each role, and what later areas add). "
        "Safe to run again: existing demo data is kept, nothing is duplicated."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=10_000, help="synthetic customers to generate")
        parser.add_argument("--seed", type=int, default=20261123, help="random seed of the generator")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    def handle(self, *args, customers: int, seed: int, no_progress: bool, **options):
        if customers < 0:
            from django.core.management.base import CommandError

            raise CommandError("--customers must be zero or more")
        steps: list[tuple[str, Callable[..., str]]] = list(DEMO_STEPS)
        with tqdm(total=len(steps), desc="seed_demo", unit="step", disable=no_progress) as bar:
            for label, step in steps:
                bar.set_postfix_str(label)
                summary = step(customers=customers, seed=seed, progress=not no_progress)
                bar.update(1)
                if summary:
                    bar.write(f"  {label}: {summary}")
