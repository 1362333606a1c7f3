"""Data-subject requests: the compliance queue, intake, transitions and package download."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Conflict
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from privacy.dsar.models import DataSubjectRequest, DsarChannel, DsarJurisdiction, DsarPackage, DsarStatus, DsarType
from privacy.dsar.package import PackageUnavailable, dsar_package_download
from privacy.dsar.rectify import RectificationError
from privacy.dsar.services import (
    TRANSITIONS,
    DsarError,
    DsarNotFound,
    DsarStateError,
    DsarTransitionError,
    days_left,
    dsar_create,
    dsar_resolve_subject,
    dsar_transition,
)

Staff = role_required(Role.COMPLIANCE, Role.STEWARD)


class DsarSerializer(serializers.ModelSerializer):
    subject_id = serializers.UUIDField(source="subject.pk", read_only=True)
    days_left = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    package_available = serializers.SerializerMethodField()

    class Meta:
        model = DataSubjectRequest
        fields = [
            "id",
            "type",
            "jurisdiction",
            "channel",
            "subject_id",
            "status",
            "verification_method",
            "verified_at",
            "received_at",
            "due_at",
            "days_left",
            "overdue",
            "deadline_flag",
            "extended_at",
            "extension_reason",
            "reason",
            "assignee",
            "created_by",
            "options",
            "result",
            "completed_at",
            "package_available",
        ]

    def get_days_left(self, obj: DataSubjectRequest) -> int:
        return days_left(obj)

    def get_overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_open and obj.due_at <= timezone.now()

    def get_package_available(self, obj: DataSubjectRequest) -> bool:
        return DsarPackage.objects.filter(request=obj, blob__isnull=False, expires_at__gt=timezone.now()).exists()


class IdentifierSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=32)
    value = serializers.CharField(max_length=256)


class DsarCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=DsarType.choices)
    jurisdiction = serializers.ChoiceField(choices=DsarJurisdiction.choices, required=False)
    channel = serializers.ChoiceField(choices=DsarChannel.choices, default=DsarChannel.API)
    subject_id = serializers.UUIDField(required=False)
    identifier = IdentifierSerializer(required=False, help_text="Resolved through its blind index; not stored.")

    def validate(self, attrs):
        if bool(attrs.get("subject_id")) == bool(attrs.get("identifier")):
            raise ValidationError("give exactly one of subject_id or identifier")
        return attrs


class DsarTransitionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(TRANSITIONS))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    verification_method = serializers.CharField(required=False, allow_blank=True, max_length=16, default="")
    assignee = serializers.CharField(required=False, max_length=128)
    options = serializers.DictField(required=False, help_text="Erasure: event_names, channel; restriction: purpose.")
    traits = serializers.DictField(required=False, help_text="Rectification: corrected traits (not stored).")


LIST_PARAMS = [
    OpenApiParameter("status", str, enum=DsarStatus.values, required=False),
    OpenApiParameter("type", str, enum=DsarType.values, required=False),
    OpenApiParameter("due_before", OpenApiTypes.DATE, required=False),
    OpenApiParameter("due_after", OpenApiTypes.DATE, required=False),
    OpenApiParameter("overdue", bool, required=False, description="Only open requests past their deadline."),
]


def _date(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    parsed = parse_date(raw)
    if parsed is None:
        raise ValidationError({name: ["expected a date YYYY-MM-DD"]})
    return parsed


class DsarListCreateView(APIView):
    """The compliance queue (oldest deadline first, days left) and intake of new requests."""

    permission_classes = [Staff]

    @extend_schema(parameters=LIST_PARAMS, responses={200: DsarSerializer(many=True)})
    def get(self, request):
        queryset = DataSubjectRequest.objects.select_related("subject").order_by("due_at", "id")
        for name, values in (("status", DsarStatus.values), ("type", DsarType.values)):
            value = request.query_params.get(name)
            if value is not None:
                if value not in values:
                    raise ValidationError({name: [f"one of {', '.join(values)}"]})
                queryset = queryset.filter(**{name: value})
        if (before := _date(request, "due_before")) is not None:
            queryset = queryset.filter(due_at__date__lte=before)
        if (after := _date(request, "due_after")) is not None:
            queryset = queryset.filter(due_at__date__gte=after)
        if request.query_params.get("overdue") in ("1", "true", "yes"):
            queryset = queryset.filter(status__in=DataSubjectRequest.OPEN_STATUSES, due_at__lte=timezone.now())
        return Response(DsarSerializer(queryset[:500], many=True).data)

    @extend_schema(request=DsarCreateSerializer, responses={201: DsarSerializer})
    def post(self, request):
        params = DsarCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            subject_id = data.get("subject_id")
            if subject_id is None:
                ident = data["identifier"]
                subject_id = dsar_resolve_subject(id_type=ident["type"], value=ident["value"]).pk
            created = dsar_create(
                actor=request_actor(request),
                subject_id=subject_id,
                request_type=data["type"],
                jurisdiction=data.get("jurisdiction") or settings.CDP_DSAR_DEFAULT_JURISDICTION,
                channel=data["channel"],
            )
        except DsarError as exc:
            raise ValidationError({"subject": [str(exc)]}) from exc
        return Response(DsarSerializer(created).data, status=201)


def _get(request_id: int) -> DataSubjectRequest:
    found = DataSubjectRequest.objects.select_related("subject").filter(pk=request_id).first()
    if found is None:
        raise NotFound("no such request")
    return found


class DsarDetailView(APIView):
    """One request with its deadline, result and (for access) whether the package is ready."""

    permission_classes = [Staff]

    @extend_schema(responses={200: DsarSerializer})
    def get(self, request, request_id: int):
        return Response(DsarSerializer(_get(request_id)).data)


class DsarTransitionView(APIView):
    """verify (with the method) · start (does or queues the work) · complete · reject (reason)
    · extend (GDPR, reason) · assign · lift (a completed restriction/objection)."""

    permission_classes = [Staff]

    @extend_schema(request=DsarTransitionSerializer, responses={200: DsarSerializer})
    def post(self, request, request_id: int):
        params = DsarTransitionSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            updated = dsar_transition(
                actor=request_actor(request),
                request_id=request_id,
                action=data["action"],
                reason=data["reason"],
                verification_method=data["verification_method"],
                assignee=data.get("assignee"),
                options=data.get("options"),
                traits=data.get("traits"),
            )
        except DsarNotFound as exc:
            raise NotFound(str(exc)) from exc
        except DsarStateError as exc:
            raise Conflict(str(exc)) from exc
        except (RectificationError, DsarTransitionError) as exc:
            raise ValidationError({"action": [str(exc)]}) from exc
        return Response(DsarSerializer(_get(updated.pk)).data)


class DsarDownloadView(APIView):
    """The access/portability package (zip with manifest), once, before it expires."""

    permission_classes = [Staff]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="zip package"),
            409: OpenApiResponse(description="not ready, already downloaded or expired"),
        }
    )
    def get(self, request, request_id: int):
        _get(request_id)
        try:
            body, package = dsar_package_download(actor=request_actor(request), request_id=request_id)
        except PackageUnavailable as exc:
            raise Conflict(str(exc)) from exc
        response = HttpResponse(body, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="dsar-{request_id}.zip"'
        response["X-Package-SHA256"] = package.sha256
        response["Cache-Control"] = "no-store"
        return response
