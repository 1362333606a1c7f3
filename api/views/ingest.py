"""Ingestion over the API.

POST /api/v1/ingest: a batch from one source, answered with a result per message.
POST /api/v1/ingest/batches: the same batch queued for a worker, answered 202 with its id;
GET /api/v1/ingest/batches/{id}: its status, then the same results.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import PayloadTooLarge
from api.parsers import LimitedJSONParser
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from cdp.models import IngestBatch
from cdp.services.ingest import ingest_batch
from cdp.services.ingest_queue import ingest_batch_status, ingest_enqueue


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


def _messages(request) -> list:
    """The batch's envelope, checked: a non-empty list within CDP_INGEST_MAX_MESSAGES."""
    params = IngestRequestSerializer(data=request.data)
    params.is_valid(raise_exception=True)
    messages = params.validated_data["messages"]
    if len(messages) > settings.CDP_INGEST_MAX_MESSAGES:
        raise PayloadTooLarge(f"a batch holds at most {settings.CDP_INGEST_MAX_MESSAGES} messages")
    return messages


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
        result = ingest_batch(actor=request_actor(request), messages=_messages(request))
        body = {"batch_id": result.batch_id, "counts": result.counts, "results": [r.as_dict() for r in result.results]}
        return Response(IngestResponseSerializer(body).data)


class QueuedBatchSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(source="id")
    status = serializers.ChoiceField(choices=IngestBatch.Status.choices)
    received = serializers.IntegerField()
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.SerializerMethodField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="when done")
    results = MessageResultSerializer(many=True, help_text="when done: one per message, as POST /ingest answers")
    error = serializers.CharField(help_text="when failed: a code (resend the batch; message ids keep it idempotent)")

    def get_status_url(self, batch: IngestBatch) -> str:
        return reverse("api:ingest-batch", args=[batch.id])


class IngestBatchesView(APIView):
    """Queue a batch for a worker: 202 with the batch id and where to poll (Location).

    For senders that should not wait for resolution. The messages are sealed at rest until a
    worker ingests them (the broker carries only the id), with the same per-message results
    and idempotency as POST /api/v1/ingest.
    """

    permission_classes = [role_required(Role.SOURCE)]
    parser_classes = [IngestJSONParser]

    @extend_schema(request=IngestRequestSerializer, responses={202: QueuedBatchSerializer})
    def post(self, request):
        batch = ingest_enqueue(actor=request_actor(request), messages=_messages(request))
        batch.refresh_from_db()  # without a broker (embedded mode) the batch is already done
        body = QueuedBatchSerializer(batch).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class IngestBatchView(APIView):
    """A queued batch's status; its results once a worker has ingested it. Own source only."""

    permission_classes = [role_required(Role.SOURCE)]

    @extend_schema(responses={200: QueuedBatchSerializer})
    def get(self, request, batch_id):
        try:
            batch = ingest_batch_status(actor=request_actor(request), batch_id=batch_id)
        except IngestBatch.DoesNotExist:
            raise NotFound("no such batch for this source") from None
        return Response(QueuedBatchSerializer(batch).data)
