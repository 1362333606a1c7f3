from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        # issue 10: access packages list the recipients that received the person's data.
        from privacy.compliance.services import disclosures_export
        from privacy.dsar.providers import register_provider

        register_provider("recipient_disclosures", export=disclosures_export)
