"""The audit trail for compliance officers: search, verify, export (+ manifest), checkpoints,
the public key that verifies them, and the records of processing (GDPR Art. 30)."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import SeqCursorPagination
from api.permissions import role_required
from api.views.base import PURPOSE_HEADER, request_actor
from cdp.actor import Role
from privacy.audit.actions import AuditAction, Outcome
from privacy.audit.chain import ROW_COLUMNS, key_id
from privacy.audit.checkpoints import public_key_hex, public_key_pem
from privacy.audit.export import FORMATS, AuditExportError, audit_export_manifest, audit_export_plan, export_chunks
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.audit.ropa import ROPA_FORMATS, records_of_processing, ropa_csv
from privacy.audit.selectors import audit_entries_search
from privacy.audit.verify import audit_verify

Compliance = role_required(Role.COMPLIANCE)


class IgnoreFormatParameter(DefaultContentNegotiation):
    """`?format=csv|jsonl` names the export format here, not a DRF renderer: always answer
    errors and JSON bodies with the first (JSON) renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = list(ROW_COLUMNS)  # the exported columns: chained fields, then prev_hash and hash


class AuditSearchParams(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time (ISO 8601).")
    actor = serializers.CharField(required=False, max_length=128, help_text="Actor id, e.g. key:PREFIX, task:NAME.")
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    subject = serializers.UUIDField(required=False, help_text="Pseudonymous profile id.")
    purpose = serializers.SlugField(required=False, max_length=64)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise ValidationError({"until": ["until must be after since"]})
        return attrs


class AuditSearchView(ListAPIView):
    """Search the audit trail (compliance). Filters combine with AND; results in seq order with a
    cursor. The search itself is audited (`audit.search`, filter names only)."""

    permission_classes = [Compliance]
    serializer_class = AuditEntrySerializer
    pagination_class = SeqCursorPagination
    queryset = AuditEntry.objects.none()

    @extend_schema(parameters=[AuditSearchParams])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        params = AuditSearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queryset = audit_entries_search(
            # ?purpose= is a search filter here, so the caller's own purpose comes from the header only.
            actor=request_actor(request, purpose=request.headers.get(PURPOSE_HEADER, "")),
            since=data.get("since"),
            until=data.get("until"),
            actor_id=data.get("actor", ""),
            action=data.get("action", ""),
            subject_id=data.get("subject"),
            purpose=data.get("purpose", ""),
            outcome=data.get("outcome", ""),
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class VerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Entries checked.")
    checkpoints_checked = serializers.IntegerField()
    last_seq = serializers.IntegerField(allow_null=True)
    last_hash = serializers.CharField(allow_blank=True)
    fault = serializers.CharField(
        allow_blank=True,
        help_text="modified, deleted, inserted, replaced, reordered, truncated, checkpoint_mismatch, "
        "checkpoint_signature or checkpoint_untrusted; empty when valid.",
    )
    first_bad_seq = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    details = serializers.DictField()


class AuditVerifyView(APIView):
    """Verify the whole hash chain and its signed checkpoints (compliance). Answers 200 with
    `valid: false`, the kind of fault and the first bad seq when the trail was tampered with."""

    permission_classes = [Compliance]

    @extend_schema(request=None, responses=VerificationSerializer)
    def post(self, request):
        result = audit_verify(actor=request_actor(request))
        return Response(VerificationSerializer(result.as_dict()).data)


class AuditExportParams(serializers.Serializer):
    format = serializers.ChoiceField(choices=sorted(FORMATS), help_text="csv or jsonl")
    from_seq = serializers.IntegerField(required=False, default=1, min_value=1)
    to_seq = serializers.IntegerField(
        required=False, min_value=1, help_text="A checkpoint's seq; default: the newest (the head is signed first)."
    )


def _plan_params(request) -> dict:
    params = AuditExportParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


class AuditExportView(APIView):
    """Stream the audit trail as CSV or JSON Lines, up to a signed checkpoint (compliance).

    The response's X-Audit-Manifest header is the URL of the matching manifest; verify offline
    with docs/verify_audit_export.py."""

    permission_classes = [Compliance]
    content_negotiation_class = IgnoreFormatParameter

    @extend_schema(
        parameters=[AuditExportParams],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, one entry per row"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="one entry per line"),
        },
    )
    def get(self, request):
        data = _plan_params(request)
        try:
            plan = audit_export_plan(
                actor=request_actor(request), fmt=data["format"], from_seq=data["from_seq"], to_seq=data.get("to_seq")
            )
        except AuditExportError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        response = StreamingHttpResponse(export_chunks(plan), content_type=plan.content_type)
        response["Content-Disposition"] = f'attachment; filename="{plan.filename}"'
        response["X-Audit-From-Seq"] = str(plan.from_seq)
        response["X-Audit-To-Seq"] = str(plan.to_seq)
        response["X-Audit-Manifest"] = (
            f"/api/v1/audit/export/manifest?format={plan.format}&from_seq={plan.from_seq}&to_seq={plan.to_seq}"
        )
        return response


class AuditExportManifestView(APIView):
    """The manifest of an export (count, first and last seq and hash, the covering checkpoint with
    its signature and public key, the file's SHA-256). Pass the export's from_seq and to_seq."""

    permission_classes = [Compliance]
    content_negotiation_class = IgnoreFormatParameter

    @extend_schema(parameters=[AuditExportParams], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data = _plan_params(request)
        try:
            manifest = audit_export_manifest(
                actor=request_actor(request), fmt=data["format"], from_seq=data["from_seq"], to_seq=data.get("to_seq")
            )
        except AuditExportError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(manifest)


class AuditCheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditCheckpoint
        fields = ["seq", "hash", "signed_at", "signature", "key_id", "public_key"]


class AuditCheckpointListView(ListAPIView):
    """The signed checkpoints, in seq order (compliance)."""

    permission_classes = [Compliance]
    serializer_class = AuditCheckpointSerializer
    pagination_class = SeqCursorPagination
    queryset = AuditCheckpoint.objects.order_by("seq")


class AuditPublicKeyView(APIView):
    """The Ed25519 public key that verifies audit checkpoints (hex and PEM). Any authenticated key."""

    @extend_schema(
        responses=inline_serializer(
            "AuditPublicKey",
            {"key_id": serializers.CharField(), "public_key": serializers.CharField(), "pem": serializers.CharField()},
        )
    )
    def get(self, request):
        public = public_key_hex()
        return Response({"key_id": key_id(public), "public_key": public, "pem": public_key_pem()})


class RopaParams(serializers.Serializer):
    format = serializers.ChoiceField(choices=ROPA_FORMATS, required=False, default="json")


class RecordsOfProcessingView(APIView):
    """Records of processing (GDPR Art. 30; PIPL Art. 55-56), generated from the purpose registry,
    the trait registry and the sources, as JSON or CSV (compliance). Audited (`ropa.export`)."""

    permission_classes = [Compliance]
    content_negotiation_class = IgnoreFormatParameter

    @extend_schema(
        parameters=[RopaParams],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="one row per purpose"),
        },
    )
    def get(self, request):
        params = RopaParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = params.validated_data["format"]
        body = records_of_processing(actor=request_actor(request), fmt=fmt)
        if fmt == "csv":
            response = HttpResponse(ropa_csv(body["records"]), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="records-of-processing.csv"'
            return response
        return Response(body)
