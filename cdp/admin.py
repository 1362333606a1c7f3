from django.contrib import admin

from cdp.models import Profile, Source, TraitDefinition


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "created_at")


@admin.register(TraitDefinition)
class TraitDefinitionAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "data_type", "personal", "sensitive", "filterable")
    list_filter = ("kind", "personal", "sensitive", "filterable")


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Staff see pseudonymous ids and status only; personal data is read through the API."""

    list_display = ("id", "status", "journey_stage", "created_at")
    list_filter = ("status", "journey_stage")
    fields = ("id", "status", "merged_into", "journey_stage", "attributes", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
