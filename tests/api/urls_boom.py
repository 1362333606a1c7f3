"""A URLconf with a view that crashes, to check the 500 body (used via pytest.mark.urls)."""

from django.urls import include, path
from rest_framework.views import APIView

from cdp.urls import handler400, handler403, handler404, handler500  # noqa: F401


class Boom(APIView):
    def get(self, request):
        raise RuntimeError("boom with details that must not leak")


urlpatterns = [
    path("api/v1/boom", Boom.as_view()),
    path("api/v1/", include("api.urls")),
]
