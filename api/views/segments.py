"""Segments API (marketing): CRUD, on-demand materialisation, DP estimates, consent-gated exports.

Thin views: a serializer checks the shape, one service does the work. No response carries an
exact member count: sizes come only from the DP engine (estimate) or as DP exclusion counts.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Conflict, error_body
from api.permissions import role_required
from api.views.analytics import DpReleaseSerializer, dp_release_response
from api.views.base import request_actor
from cdp.actor import Role
from cdp.models import Segment, SegmentExport
from cdp.services import segments as svc


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "definition",
            "version",
            "owner",
            "created_at",
            "updated_at",
            "materialised_at",
            "materialised_version",
        ]
        read_only_fields = fields


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    definition = serializers.JSONField(help_text="Rule tree (docs/segments.md); validated against the registry.")


class SegmentPatchSerializer(SegmentWriteSerializer):
    name = serializers.CharField(max_length=120, required=False)
    definition = serializers.JSONField(required=False)


class EstimateSerializer(serializers.Serializer):
    epsilon = serializers.FloatField(help_text="Privacy loss charged to your budget.")
    group_by = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Up to 2 of journey_stage, trait:<enum key>."
    )


class ExportCreateSerializer(serializers.Serializer):
    purpose = serializers.CharField(max_length=64, help_text="A registered purpose code, e.g. marketing_sms.")
    channel = serializers.ChoiceField(choices=sorted(svc.EXPORT_CHANNELS))
    recipient_name = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        default="",
        help_text="A registered, active recipient allowed for the purpose (GET /api/v1/recipients).",
    )


class ExportSerializer(serializers.ModelSerializer):
    excluded = serializers.JSONField(
        source="excluded_dp", help_text="Members left out, as a DP count {value, error_95, epsilon}; null until built."
    )

    class Meta:
        model = SegmentExport
        fields = [
            "id",
            "segment",
            "definition_version",
            "purpose",
            "channel",
            "recipient_name",
            "status",
            "created_at",
            "built_at",
            "expires_at",
            "downloaded_at",
            "excluded",
        ]
        read_only_fields = fields


class ExportContentSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField(), help_text="profile_id plus the channel's identifier.")


def _segment_error(exc: svc.SegmentError) -> ValidationError:
    return ValidationError(exc.as_details())


def _body(serializer_class, request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"path": "$", "message": "must be a JSON object"})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _get_segment(segment_id: int) -> Segment:
    segment = Segment.objects.filter(id=segment_id).first()
    if segment is None:
        raise NotFound("no such segment")
    return segment


class SegmentListView(APIView):
    """List and create segments."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(responses={200: SegmentSerializer(many=True)})
    def get(self, request):
        return Response(SegmentSerializer(Segment.objects.all(), many=True).data)

    @extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer})
    def post(self, request):
        data = _body(SegmentWriteSerializer, request)
        try:
            segment = svc.segment_create(actor=request_actor(request), **data)
        except svc.SegmentError as exc:
            raise _segment_error(exc) from exc
        return Response(SegmentSerializer(segment).data, status=201)


class SegmentDetailView(APIView):
    """Read, change or delete one segment (no member count: use the DP estimate)."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(responses={200: SegmentSerializer})
    def get(self, request, segment_id: int):
        return Response(SegmentSerializer(_get_segment(segment_id)).data)

    @extend_schema(request=SegmentPatchSerializer, responses={200: SegmentSerializer})
    def patch(self, request, segment_id: int):
        _get_segment(segment_id)
        data = _body(SegmentPatchSerializer, request)
        try:
            segment = svc.segment_update(actor=request_actor(request), segment_id=segment_id, **data)
        except svc.SegmentError as exc:
            raise _segment_error(exc) from exc
        return Response(SegmentSerializer(segment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, segment_id: int):
        _get_segment(segment_id)
        try:
            svc.segment_delete(actor=request_actor(request), segment_id=segment_id)
        except svc.SegmentError as exc:
            raise Conflict(exc.message) from exc
        return Response(status=204)


class SegmentMaterializeView(APIView):
    """Queue a rebuild of the segment's membership (done in SQL by a worker)."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(request=None, responses={202: SegmentSerializer})
    def post(self, request, segment_id: int):
        segment = _get_segment(segment_id)
        svc.segment_request_materialise(actor=request_actor(request), segment_id=segment_id)
        return Response(SegmentSerializer(segment).data, status=202)


class SegmentEstimateView(APIView):
    """The segment's size and breakdowns with differential privacy, charged to your budget."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(request=EstimateSerializer, responses={200: DpReleaseSerializer})
    def post(self, request, segment_id: int):
        _get_segment(segment_id)
        data = _body(EstimateSerializer, request)
        return dp_release_response(
            lambda: svc.segment_estimate(
                actor=request_actor(request),
                segment_id=segment_id,
                epsilon=data["epsilon"],
                group_by=data.get("group_by"),
            )
        )


class SegmentExportCreateView(APIView):
    """Request an export for one purpose and channel; a worker builds it at once."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(request=ExportCreateSerializer, responses={202: ExportSerializer})
    def post(self, request, segment_id: int):
        _get_segment(segment_id)
        data = _body(ExportCreateSerializer, request)
        try:
            export = svc.export_create(actor=request_actor(request), segment_id=segment_id, **data)
        except svc.SegmentError as exc:
            raise _segment_error(exc) from exc
        return Response(ExportSerializer(export).data, status=202)


def _get_export(export_id):
    if not SegmentExport.objects.filter(id=export_id).exists():
        raise NotFound("no such export")


class ExportDetailView(APIView):
    """An export's status (requester only)."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(responses={200: ExportSerializer})
    def get(self, request, export_id):
        _get_export(export_id)
        export = svc.export_status(actor=request_actor(request), export_id=export_id)
        return Response(ExportSerializer(export).data)


class ExportDownloadView(APIView):
    """Download the export once (requester only, before expiry); it is shredded afterwards."""

    permission_classes = [role_required(Role.MARKETING)]

    @extend_schema(responses={200: ExportContentSerializer})
    def get(self, request, export_id):
        _get_export(export_id)
        try:
            content = svc.export_download(actor=request_actor(request), export_id=export_id)
        except svc.ExportUnavailable as exc:
            return Response(error_body(exc.code, str(exc)), status=409)
        response = Response(content)
        response["Cache-Control"] = "no-store"
        return response
