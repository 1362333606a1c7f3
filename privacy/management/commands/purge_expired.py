"""python manage.py purge_expired [--dry-run]: the retention purge, by hand."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from cdp.actor import Actor
from privacy.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Purge events older than their purposes' retention (Purpose.retention_days for the event data "
        "category) and profiles left with no basis (no events, no current consent, no open request, "
        "last seen beyond the longest retention). Prints a JSON report of counts; writes a "
        "retention.purge audit entry. --dry-run counts without changing anything."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be purged; change nothing.")

    def handle(self, *args, **options) -> None:
        report = retention_purge(actor=Actor.system("purge_expired"), dry_run=options["dry_run"])
        self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
