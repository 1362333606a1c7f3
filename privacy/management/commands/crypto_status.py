"""Show KEK versions and how many data keys each wraps (no key material, no subject ids)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from privacy.crypto.services import crypto_status


class Command(BaseCommand):
    help = (
        "Show the KEK versions this process holds, the active one, how many live data keys each KEK version "
        "wraps, how many are waiting for rotate_kek, and how many subjects were crypto-shredded."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object instead of a table"
        )

    def handle(self, *args, as_json: bool = False, **options):
        status = crypto_status()
        if as_json:
            self.stdout.write(_json_dumps(status))
            return
        self.stdout.write(f"KEK versions in the key ring: {', '.join(f'v{v}' for v in status.kek_versions)}")
        self.stdout.write(f"Active KEK: v{status.active_version}")
        self.stdout.write("Live data keys per KEK version:")
        if not status.data_keys:
            self.stdout.write("  (none)")
        for version, count in sorted(status.data_keys.items()):
            marks = []
            if version == status.active_version:
                marks.append("active")
            if version not in status.kek_versions:
                marks.append("NOT IN KEY RING: unreadable")
            suffix = f"  ({', '.join(marks)})" if marks else ""
            self.stdout.write(f"  v{version}: {count}{suffix}")
        self.stdout.write(f"Waiting for rotate_kek: {status.to_rewrap}")
        self.stdout.write(f"Shredded (erased) subjects: {status.shredded}")
        if status.unknown_versions:
            self.stderr.write(
                "Warning: data keys use KEK versions missing from CDP_KEKS: "
                + ", ".join(f"v{v}" for v in status.unknown_versions)
            )


def _json_dumps(status) -> str:
    return json.dumps(
        {
            "kek_versions": status.kek_versions,
            "active_version": status.active_version,
            "data_keys": {str(v): n for v, n in sorted(status.data_keys.items())},
            "to_rewrap": status.to_rewrap,
            "shredded": status.shredded,
            "unknown_versions": status.unknown_versions,
        }
    )
