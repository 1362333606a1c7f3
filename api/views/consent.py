"""Consent API: purposes and notices, a subject's consent state and history, recording grants
and withdrawals, evidence export, and portal links. Views parse, call one service, serialise."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from consent import selectors
from consent.models import ConsentEvent, ConsentMethod, Language
from consent.services import (
    ConsentError,
    consent_evidence_export,
    consent_read,
    consent_record,
    evidence_row,
    portal_link_create,
)


class ConsentBadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "the consent change is invalid"
    default_code = "invalid"


_STATUS_BY_CODE = {"not_found": status.HTTP_404_NOT_FOUND, "subject_inactive": status.HTTP_409_CONFLICT}


def _api_error(exc: ConsentError) -> exceptions.APIException:
    """A service refusal as an API error whose `code` is the service's code."""
    if exc.code == "not_found":
        return exceptions.NotFound(str(exc))
    error = ConsentBadRequest(detail=str(exc), code=exc.code)
    error.status_code = _STATUS_BY_CODE.get(exc.code, status.HTTP_400_BAD_REQUEST)
    return error


# --- purposes --------------------------------------------------------------------------------


class PolicyVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    language = serializers.CharField()
    text = serializers.CharField()
    text_sha256 = serializers.CharField()
    published_at = serializers.DateTimeField()
    material = serializers.BooleanField()


class PurposeSerializer(serializers.Serializer):
    code = serializers.CharField()
    name_en = serializers.CharField()
    name_zh = serializers.CharField()
    description_en = serializers.CharField()
    description_zh = serializers.CharField()
    legal_basis = serializers.CharField()
    jurisdictions = serializers.ListField(child=serializers.CharField())
    data_categories = serializers.ListField(child=serializers.CharField())
    channels = serializers.ListField(child=serializers.CharField())
    retention_days = serializers.IntegerField()
    recipients = serializers.ListField(child=serializers.CharField())
    separate_consent = serializers.CharField(allow_blank=True)
    needs_consent = serializers.BooleanField()
    current_policy = PolicyVersionSerializer(many=True, help_text="The notice in force, one per language.")


class PurposeListView(APIView):
    """Every active purpose with its legal basis and the notice currently in force."""

    @extend_schema(responses=PurposeSerializer(many=True))
    def get(self, request):
        rows = []
        for purpose in selectors.purposes_list():
            current = [selectors.policy_current(purpose=purpose, language=lang) for lang in Language.values]
            rows.append(
                {
                    **{f: getattr(purpose, f) for f in PurposeSerializer().fields if hasattr(purpose, f)},
                    "current_policy": [p for p in current if p is not None and p.language in Language.values],
                }
            )
        return Response(PurposeSerializer(rows, many=True).data)


# --- a subject's consents --------------------------------------------------------------------


class ScopeStateSerializer(serializers.Serializer):
    channel = serializers.CharField(allow_blank=True)
    state = serializers.CharField()
    event = serializers.CharField()
    policy_version = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    record_id = serializers.IntegerField()


class PurposeStateSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    legal_basis = serializers.CharField()
    state = serializers.CharField(help_text="granted, withdrawn, expired, stale, not_set or not_required")
    scopes = ScopeStateSerializer(many=True)
    current_policy_version = serializers.IntegerField()


class ConsentRecordSerializer(serializers.Serializer):
    record_id = serializers.IntegerField()
    subject_id = serializers.UUIDField()
    purpose = serializers.CharField()
    event = serializers.CharField()
    channel = serializers.CharField(allow_blank=True)
    policy_version = serializers.IntegerField()
    policy_language = serializers.CharField(allow_blank=True)
    policy_text_sha256 = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)
    method = serializers.CharField()
    actor_kind = serializers.CharField()
    actor_id = serializers.CharField()
    occurred_at = serializers.CharField()
    recorded_at = serializers.CharField()
    expires_at = serializers.CharField(allow_blank=True)
    ip_hash = serializers.CharField(allow_blank=True)
    user_agent_hash = serializers.CharField(allow_blank=True)
    evidence = serializers.DictField(child=serializers.CharField())
    request_id = serializers.CharField(allow_blank=True)


class SubjectConsentsSerializer(serializers.Serializer):
    subject_id = serializers.UUIDField()
    purposes = PurposeStateSerializer(many=True)
    history = ConsentRecordSerializer(many=True)


class ConsentChangeSerializer(serializers.Serializer):
    purpose = serializers.SlugField(max_length=64)
    event = serializers.ChoiceField(
        choices=[ConsentEvent.GRANTED, ConsentEvent.WITHDRAWN, ConsentEvent.GUARDIAN_GRANTED],
        help_text="granted, withdrawn, or guardian_granted (needs evidence.guardian_reference)",
    )
    channel = serializers.CharField(max_length=20, required=False, default="", allow_blank=True)
    method = serializers.ChoiceField(choices=[c for c in ConsentMethod.values if c != ConsentMethod.SYSTEM])
    source = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    language = serializers.ChoiceField(choices=Language.values, required=False, default=Language.EN)
    policy_version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    ip_address = serializers.IPAddressField(
        required=False, default="", allow_blank=True, help_text="Stored only as a keyed hash."
    )
    user_agent = serializers.CharField(
        max_length=512, required=False, default="", allow_blank=True, help_text="Stored only as a keyed hash."
    )
    evidence = serializers.DictField(
        child=serializers.CharField(max_length=128), required=False, default=dict,
        help_text="References only: banner_id, banner_version, form_id, signature_ref, receipt_id, "
        "guardian_reference, store_id, note.",
    )  # fmt: skip


class SubjectConsentsView(APIView):
    """A subject's consent: current state per purpose and the full history with evidence (GET),
    or record a grant or withdrawal made elsewhere (POST). Steward or compliance, with a declared
    purpose (X-Purpose); audited consent.read / consent.grant / consent.withdraw."""

    permission_classes = [role_required(Role.STEWARD, Role.COMPLIANCE)]

    @extend_schema(
        parameters=[OpenApiParameter("X-Purpose", str, OpenApiParameter.HEADER, required=True)],
        responses=SubjectConsentsSerializer,
    )
    def get(self, request, subject_id):
        try:
            data = consent_read(actor=request_actor(request), subject_id=subject_id)
        except ConsentError as exc:
            raise _api_error(exc) from exc
        data["history"] = [evidence_row(r) for r in data["history"]]
        return Response(SubjectConsentsSerializer(data).data)

    @extend_schema(
        parameters=[OpenApiParameter("X-Purpose", str, OpenApiParameter.HEADER, required=True)],
        request=ConsentChangeSerializer,
        responses={201: ConsentRecordSerializer},
    )
    def post(self, request, subject_id):
        params = ConsentChangeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            record = consent_record(actor=request_actor(request), subject_id=subject_id, **params.validated_data)
        except ConsentError as exc:
            raise _api_error(exc) from exc
        return Response(ConsentRecordSerializer(evidence_row(record)).data, status=status.HTTP_201_CREATED)


class CsvRenderer(BaseRenderer):
    """Passes through CSV text that the service already built."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode("utf-8") if isinstance(data, str) else JSONRenderer().render(data)


class ConsentEvidenceView(APIView):
    """Export a subject's consent evidence (every record: notice hash, method, actor, time, keyed
    hashes of address and user agent) as JSON or CSV. Compliance only; audited consent.export."""

    permission_classes = [role_required(Role.COMPLIANCE)]
    renderer_classes = [JSONRenderer, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and hasattr(request, "accepted_renderer"):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("X-Purpose", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("format", str, OpenApiParameter.QUERY, enum=["json", "csv"], default="json"),
        ],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="JSON document or CSV file")},
    )
    def get(self, request, subject_id):
        fmt = request.query_params.get("format", "json")
        try:
            body, content_type = consent_evidence_export(actor=request_actor(request), subject_id=subject_id, fmt=fmt)
        except ConsentError as exc:
            raise _api_error(exc) from exc
        import json

        data = body if fmt == "csv" else json.loads(body)
        response = Response(data, content_type=f"{content_type}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="consent-evidence-{subject_id}.{fmt}"'
        return response


# --- portal links ----------------------------------------------------------------------------


class PortalLinkRequestSerializer(serializers.Serializer):
    subject_id = serializers.UUIDField()
    ttl_minutes = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=43200)


class PortalLinkSerializer(serializers.Serializer):
    link_id = serializers.IntegerField()
    url = serializers.CharField(help_text="Shown once; only a hash of its token is stored. Send it to the person.")
    expires_at = serializers.DateTimeField()


class PortalLinkView(APIView):
    """Issue a signed, expiring, single-use link to the consent portal for one subject. The
    brand sends it through its own channel; the URL carries a token and nothing personal."""

    permission_classes = [role_required(Role.STEWARD)]

    @extend_schema(request=PortalLinkRequestSerializer, responses={201: PortalLinkSerializer})
    def post(self, request):
        params = PortalLinkRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            issued = portal_link_create(
                actor=request_actor(request),
                subject_id=params.validated_data["subject_id"],
                ttl_minutes=params.validated_data["ttl_minutes"],
            )
        except ConsentError as exc:
            raise _api_error(exc) from exc
        base = settings.CDP_PORTAL_BASE_URL or request.build_absolute_uri("/").rstrip("/")
        body = {"link_id": issued.link.pk, "url": f"{base}{issued.path}", "expires_at": issued.link.expires_at}
        return Response(PortalLinkSerializer(body).data, status=status.HTTP_201_CREATED)
