"""JSON parsing with a body-size limit, so an oversized body is a 413, not a memory spike."""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework.parsers import JSONParser

from api.errors import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    """Refuses bodies over `max_bytes` (default DATA_UPLOAD_MAX_MEMORY_SIZE) before reading them.

    A view with a tighter limit (ingestion: CDP_INGEST_MAX_BYTES) subclasses and sets max_bytes.
    """

    max_bytes: int | None = None

    def parse(self, stream, media_type=None, parser_context=None):
        limit = self.max_bytes or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if declared > limit:
            raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
        if stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
            stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)
