from django.core.management.base import BaseCommand, CommandError

from api.keys import ApiKeyError, api_key_create
from api.models import API_ROLES
from cdp.actor import Actor
from cdp.models import Channel


class Command(BaseCommand):
    help = (
        "Create an API key and print it once (only its prefix and hash are stored). "
        "A key of role 'source' is bound to --source, which is created if missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, choices=[r for r, _ in API_ROLES])
        parser.add_argument("--name", required=True, help="who or what uses the key")
        parser.add_argument("--source", default="", help="source name (slug) for role 'source'")
        parser.add_argument("--channel", default="", choices=["", *Channel.values], help="channel of a new source")

    def handle(self, *args, role, name, source, channel, **options):
        try:
            created = api_key_create(
                actor=Actor.system("create_api_key"), name=name, role=role, source_name=source, channel=channel
            )
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Created key {created.api_key.prefix} ({role}). It is shown once; store it now:")
        self.stdout.write(created.plaintext)
