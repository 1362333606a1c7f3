import json

from django.core.management.base import BaseCommand, CommandError

from cdp.actor import Actor
from privacy.audit.verify import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain and its signed checkpoints, streaming in constant memory. "
        "Reports the first bad sequence number and the kind of fault (modified, deleted, inserted, replaced, "
        "reordered, truncated, checkpoint_mismatch, checkpoint_signature, checkpoint_untrusted); exits with "
        "an error when the chain is broken. The run itself is recorded as an audit.verify entry."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")
        parser.add_argument("--chunk-size", type=int, default=2000, help="rows fetched per round trip")

    def handle(self, *args, as_json: bool = False, chunk_size: int = 2000, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        result = audit_verify(actor=Actor.system("audit_verify"), chunk_size=chunk_size)
        if as_json:
            self.stdout.write(json.dumps(result.as_dict()))
        elif result.valid:
            self.stdout.write(
                f"OK: {result.checked} entries, {result.checkpoints_checked} checkpoints; "
                f"head #{result.last_seq} {result.last_hash}"
            )
        if not result.valid:
            raise CommandError(f"audit chain broken: {result.fault} at seq {result.first_bad_seq}: {result.message}")
