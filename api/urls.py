"""API v1 routes."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.views import analytics, audit, compliance_ops, consent, dsar, ingest, profiles, segments, system

app_name = "api"

urlpatterns = [
    path("health", system.HealthView.as_view(), name="health"),
    path("me", system.MeView.as_view(), name="me"),
    path("keys", system.ApiKeyListView.as_view(), name="keys"),
    path("keys/<str:prefix>", system.ApiKeyRevokeView.as_view(), name="key-revoke"),
    path("purposes", consent.PurposeListView.as_view(), name="purposes"),
    path("subjects/<uuid:subject_id>/consents", consent.SubjectConsentsView.as_view(), name="subject-consents"),
    path(
        "subjects/<uuid:subject_id>/consents/evidence",
        consent.ConsentEvidenceView.as_view(),
        name="subject-consent-evidence",
    ),
    path("portal-links", consent.PortalLinkView.as_view(), name="portal-links"),
    path("audit", audit.AuditSearchView.as_view(), name="audit-search"),
    path("audit/verify", audit.AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/export", audit.AuditExportView.as_view(), name="audit-export"),
    path("audit/export/manifest", audit.AuditExportManifestView.as_view(), name="audit-export-manifest"),
    path("audit/checkpoints", audit.AuditCheckpointListView.as_view(), name="audit-checkpoints"),
    path("audit/public-key", audit.AuditPublicKeyView.as_view(), name="audit-public-key"),
    path("records-of-processing", audit.RecordsOfProcessingView.as_view(), name="records-of-processing"),
    path("analytics/query", analytics.AnalyticsQueryView.as_view(), name="analytics-query"),
    path("analytics/budget", analytics.AnalyticsBudgetView.as_view(), name="analytics-budget"),
    path("ingest", ingest.IngestView.as_view(), name="ingest"),
    path("ingest/batches", ingest.IngestBatchesView.as_view(), name="ingest-batches"),
    path("ingest/batches/<str:batch_id>", ingest.IngestBatchView.as_view(), name="ingest-batch"),
    path("profiles/lookup", profiles.ProfileLookupView.as_view(), name="profile-lookup"),
    path("profiles/<uuid:profile_id>", profiles.ProfileDetailView.as_view(), name="profile-detail"),
    path("profiles/<uuid:profile_id>/events", profiles.ProfileEventsView.as_view(), name="profile-events"),
    path("profiles/<uuid:profile_id>/unmerge", profiles.ProfileUnmergeView.as_view(), name="profile-unmerge"),
    path("dsar", dsar.DsarListCreateView.as_view(), name="dsar-list"),
    path("dsar/<int:request_id>", dsar.DsarDetailView.as_view(), name="dsar-detail"),
    path("dsar/<int:request_id>/transitions", dsar.DsarTransitionView.as_view(), name="dsar-transition"),
    path("dsar/<int:request_id>/download", dsar.DsarDownloadView.as_view(), name="dsar-download"),
    path("segments", segments.SegmentListView.as_view(), name="segments"),
    path("segments/<int:segment_id>", segments.SegmentDetailView.as_view(), name="segment-detail"),
    path(
        "segments/<int:segment_id>/materialize", segments.SegmentMaterializeView.as_view(), name="segment-materialize"
    ),
    path("segments/<int:segment_id>/estimate", segments.SegmentEstimateView.as_view(), name="segment-estimate"),
    path("segments/<int:segment_id>/exports", segments.SegmentExportCreateView.as_view(), name="segment-exports"),
    path("exports/<uuid:export_id>", segments.ExportDetailView.as_view(), name="export-detail"),
    path("exports/<uuid:export_id>/download", segments.ExportDownloadView.as_view(), name="export-download"),
    # issue 10: compliance operations
    path("recipients", compliance_ops.RecipientListView.as_view(), name="recipients"),
    path("recipients/<int:recipient_id>", compliance_ops.RecipientDetailView.as_view(), name="recipient-detail"),
    path("breaches", compliance_ops.BreachListView.as_view(), name="breaches"),
    path("breaches/<int:breach_id>", compliance_ops.BreachDetailView.as_view(), name="breach-detail"),
    path("breaches/<int:breach_id>/notification-form", compliance_ops.BreachFormView.as_view(), name="breach-form"),
    path("assessments", compliance_ops.AssessmentListView.as_view(), name="assessments"),
    path(
        "assessments/<int:assessment_id>/approve",
        compliance_ops.AssessmentApproveView.as_view(),
        name="assessment-approve",
    ),
    path("purposes/<slug:code>/activate", compliance_ops.PurposeActivateView.as_view(), name="purpose-activate"),
    path(
        "dsar/<int:request_id>/recipient-notifications",
        compliance_ops.DsarRecipientNotificationsView.as_view(),
        name="dsar-recipient-notifications",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
