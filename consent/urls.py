"""Portal routes under /portal/. The only token-bearing URL is open/<token>, which redirects."""

from django.urls import path
from django.views.i18n import set_language

from consent import views

app_name = "portal"

urlpatterns = [
    path("", views.portal_home, name="home"),
    path("open/<str:token>", views.portal_open, name="open"),
    path("consents", views.portal_consent, name="consent"),
    path("requests", views.portal_request, name="request"),
    path("logout", views.portal_logout, name="logout"),
    path("language", views.portal_page(set_language), name="language"),
]
