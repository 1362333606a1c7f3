"""API v1 routes."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.views import ingest, profiles, system

app_name = "api"

urlpatterns = [
    path("health", system.HealthView.as_view(), name="health"),
    path("me", system.MeView.as_view(), name="me"),
    path("keys", system.ApiKeyListView.as_view(), name="keys"),
    path("keys/<str:prefix>", system.ApiKeyRevokeView.as_view(), name="key-revoke"),
    path("ingest", ingest.IngestView.as_view(), name="ingest"),
    path("profiles/lookup", profiles.ProfileLookupView.as_view(), name="profile-lookup"),
    path("profiles/<uuid:profile_id>", profiles.ProfileDetailView.as_view(), name="profile-detail"),
    path("profiles/<uuid:profile_id>/events", profiles.ProfileEventsView.as_view(), name="profile-events"),
    path("profiles/<uuid:profile_id>/unmerge", profiles.ProfileUnmergeView.as_view(), name="profile-unmerge"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
