"""Request id: one id per request, echoed in X-Request-ID, carried into every audit entry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from privacy.crypto.datakeys import clear_data_key_cache

_VALID = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        try:
            response = self.get_response(request)
        finally:
            # Unwrapped data keys live only as long as the request that needed them.
            clear_data_key_cache()
        response["X-Request-ID"] = request.request_id
        return response
