from django.apps import AppConfig


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = "Customer core"

    def ready(self) -> None:
        # Imported for their registrations: the `in_array` lookup and the database checks.
        import cdp.bulk
        import cdp.checks  # noqa: F401

        # Segment memberships are personal data about the subject: they go into access packages
        # and are deleted by erasure through the data-subject-rights provider registry.
        from cdp.services.segments import segment_memberships_erase, segment_memberships_export
        from privacy.dsar.providers import register_provider

        register_provider("segment_memberships", export=segment_memberships_export, erase=segment_memberships_erase)
