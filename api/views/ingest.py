"""POST /api/v1/ingest: a batch of messages from one source, a result per message."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import PayloadTooLarge
from api.parsers import LimitedJSONParser
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from cdp.services.ingest import ingest_batch


class IngestJSONParser(LimitedJSONParser):
    """Bodies over CDP_INGEST_MAX_BYTES are refused with 413 before they are read."""

    @property
    def max_bytes(self) -> int:  # type: ignore[override]
        return settings.CDP_INGEST_MAX_BYTES


class IngestRequestSerializer(serializers.Serializer):
    messages = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text=(
            "Each message: message_id (idempotency key per source), type (identify | track | alias | consent), "
            "timestamp (ISO 8601), optional channel, identifiers {type: value} (email, phone, device_id, "
            "cookie_id, loyalty_id, external_id, wechat_openid, wechat_unionid), traits {key: value} "
            "(registered traits), event and properties (track), consent {purpose, event granted|withdrawn, "
            "method cookie_banner|pos_signature|api, channel, policy_version, language, evidence} (consent). "
            "Messages are validated one by one, so a "
            "bad message is rejected alone. See docs/identity.md."
        ),
    )


class MessageResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message_id = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "suppressed", "rejected"])
    code = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)


class IngestResponseSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    results = MessageResultSerializer(many=True)


class IngestView(APIView):
    """Ingest up to CDP_INGEST_MAX_MESSAGES messages (and CDP_INGEST_MAX_BYTES) from the key's source.

    The answer lists a result per message: accepted, duplicate, suppressed (an erased person)
    or rejected with a code and a reason. One bad message never rejects its neighbours.
    """

    permission_classes = [role_required(Role.SOURCE)]
    parser_classes = [IngestJSONParser]

    @extend_schema(
        request=IngestRequestSerializer,
        responses={200: IngestResponseSerializer},
        examples=[
            OpenApiExample(
                "identify",
                value={
                    "messages": [
                        {
                            "message_id": "web-0001",
                            "type": "identify",
                            "timestamp": "2026-11-23T10:00:00Z",
                            "identifiers": {"email": "li.na@example.com", "cookie_id": "ck-1"},
                            "traits": {"name": "李娜", "city": "Shanghai"},
                        }
                    ]
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        params = IngestRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        messages = params.validated_data["messages"]
        if len(messages) > settings.CDP_INGEST_MAX_MESSAGES:
            raise PayloadTooLarge(f"a batch holds at most {settings.CDP_INGEST_MAX_MESSAGES} messages")
        result = ingest_batch(actor=request_actor(request), messages=messages)
        body = {"batch_id": result.batch_id, "counts": result.counts, "results": [r.as_dict() for r in result.results]}
        return Response(IngestResponseSerializer(body).data)
