from django.core.management.base import BaseCommand, CommandError

from api.keys import ApiKeyError, api_key_revoke
from cdp.actor import Actor


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the part after 'cdp_'); revoked keys fail with 401."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        try:
            key = api_key_revoke(actor=Actor.system("revoke_api_key"), prefix=prefix)
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked {key.prefix} ({key.name}, {key.role}) at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
