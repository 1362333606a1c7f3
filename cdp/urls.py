from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from privacy.audit import pages as compliance

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/docs/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    path("portal/", include("consent.urls")),
    path("compliance/", compliance.compliance_home, name="compliance"),
    path("compliance/verify", compliance.compliance_verify, name="compliance-verify"),
    path(
        "compliance/export.<str:fmt>.manifest.json",
        compliance.compliance_export_manifest,
        name="compliance-export-manifest",
    ),
    path("compliance/export.<str:fmt>", compliance.compliance_export, name="compliance-export"),
    path("compliance/records-of-processing.<str:fmt>", compliance.compliance_ropa, name="compliance-ropa"),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
