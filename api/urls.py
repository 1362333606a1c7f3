"""API v1 routes."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.views import analytics, system

app_name = "api"

urlpatterns = [
    path("health", system.HealthView.as_view(), name="health"),
    path("me", system.MeView.as_view(), name="me"),
    path("keys", system.ApiKeyListView.as_view(), name="keys"),
    path("keys/<str:prefix>", system.ApiKeyRevokeView.as_view(), name="key-revoke"),
    path("analytics/query", analytics.AnalyticsQueryView.as_view(), name="analytics-query"),
    path("analytics/budget", analytics.AnalyticsBudgetView.as_view(), name="analytics-budget"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
