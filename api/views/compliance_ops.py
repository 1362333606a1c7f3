"""Compliance operations API (issue 10): recipients register, breach register, impact assessments,
purpose activation and GDPR Art. 19 recipient-notification confirmations. Thin views over
privacy.compliance.services; every change is audited there."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Conflict
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from consent.models import Purpose
from privacy.compliance import services as svc
from privacy.compliance.models import (
    Breach,
    BreachStatus,
    ImpactAssessment,
    Recipient,
    RecipientRole,
    TransferMechanism,
)
from privacy.dsar.models import DataSubjectRequest

Officer = role_required(Role.COMPLIANCE, Role.ADMIN)


def _body(serializer_class, request, *, partial: bool = False) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"path": "$", "message": "must be a JSON object"})
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except svc.ComplianceError as exc:
        raise ValidationError({"path": exc.path, "message": exc.message}) from exc
    except svc.ActivationRefused as exc:
        raise Conflict(str(exc)) from exc
    except ObjectDoesNotExist as exc:
        raise NotFound("no such object") from exc


class RecipientSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=RecipientRole.choices)
    transfer_mechanism = serializers.ChoiceField(choices=TransferMechanism.choices, required=False, allow_blank=True)
    purposes = serializers.ListField(child=serializers.SlugField(max_length=64), required=False, max_length=50)
    abroad = serializers.SerializerMethodField()

    class Meta:
        model = Recipient
        fields = [
            "id",
            "name",
            "contact",
            "role",
            "country",
            "transfer_mechanism",
            "purposes",
            "active",
            "abroad",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "abroad", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}

    def get_abroad(self, obj: Recipient) -> bool:
        return svc.recipient_is_abroad(obj)


class RecipientListView(APIView):
    """The recipients register (GDPR Art. 30(1)(d)); segment exports may only go to its active entries."""

    permission_classes = [Officer]

    @extend_schema(responses={200: RecipientSerializer(many=True)})
    def get(self, request):
        return Response(RecipientSerializer(Recipient.objects.all(), many=True).data)

    @extend_schema(request=RecipientSerializer, responses={201: RecipientSerializer})
    def post(self, request):
        data = _body(RecipientSerializer, request)
        recipient = _call(svc.recipient_create, actor=request_actor(request), **data)
        return Response(RecipientSerializer(recipient).data, status=201)


class RecipientDetailView(APIView):
    """One recipient: read, change, or retire (DELETE deactivates; disclosures stay traceable)."""

    permission_classes = [Officer]

    @extend_schema(responses={200: RecipientSerializer})
    def get(self, request, recipient_id: int):
        return Response(RecipientSerializer(_call(Recipient.objects.get, pk=recipient_id)).data)

    @extend_schema(request=RecipientSerializer, responses={200: RecipientSerializer})
    def patch(self, request, recipient_id: int):
        data = _body(RecipientSerializer, request, partial=True)
        recipient = _call(svc.recipient_update, actor=request_actor(request), recipient_id=recipient_id, **data)
        return Response(RecipientSerializer(recipient).data)

    @extend_schema(responses={200: RecipientSerializer})
    def delete(self, request, recipient_id: int):
        recipient = _call(svc.recipient_deactivate, actor=request_actor(request), recipient_id=recipient_id)
        return Response(RecipientSerializer(recipient).data)


class BreachSerializer(serializers.ModelSerializer):
    data_categories = serializers.ListField(child=serializers.SlugField(max_length=64), required=False)
    status = serializers.ChoiceField(choices=BreachStatus.choices, required=False)
    hours_left = serializers.SerializerMethodField()

    class Meta:
        model = Breach
        fields = [
            "id",
            "title",
            "discovered_at",
            "data_categories",
            "actor_id",
            "window_start",
            "window_end",
            "affected_estimate",
            "cause",
            "measures",
            "individuals_must_be_told",
            "status",
            "deadline_at",
            "hours_left",
            "deadline_flag",
            "notified_at",
            "individuals_notified_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "affected_estimate", "deadline_at", "deadline_flag", "created_by", "created_at"]

    def get_hours_left(self, obj: Breach) -> float:
        return svc.breach_hours_left(obj)


class BreachListView(APIView):
    """The breach register (GDPR Arts. 33-34, PIPL Art. 57) with each breach's 72-hour clock."""

    permission_classes = [Officer]

    @extend_schema(responses={200: BreachSerializer(many=True)})
    def get(self, request):
        return Response(BreachSerializer(Breach.objects.all(), many=True).data)

    @extend_schema(request=BreachSerializer, responses={201: BreachSerializer})
    def post(self, request):
        data = _body(BreachSerializer, request)
        data.pop("status", None)
        breach = _call(svc.breach_create, actor=request_actor(request), **data)
        return Response(BreachSerializer(breach).data, status=201)


class BreachDetailView(APIView):
    """One breach: read, or record progress (cause, measures, notification, closure)."""

    permission_classes = [Officer]

    @extend_schema(responses={200: BreachSerializer})
    def get(self, request, breach_id: int):
        return Response(BreachSerializer(_call(Breach.objects.get, pk=breach_id)).data)

    @extend_schema(request=BreachSerializer, responses={200: BreachSerializer})
    def patch(self, request, breach_id: int):
        data = _body(BreachSerializer, request, partial=True)
        breach = _call(svc.breach_update, actor=request_actor(request), breach_id=breach_id, **data)
        return Response(BreachSerializer(breach).data)


class BreachFormView(APIView):
    """The breach in the shape of an authority notification form (JSON; audited `breach.export`)."""

    permission_classes = [Officer]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, breach_id: int):
        return Response(_call(svc.breach_notification_form, actor=request_actor(request), breach_id=breach_id))


class AssessmentSerializer(serializers.ModelSerializer):
    content = serializers.JSONField()

    class Meta:
        model = ImpactAssessment
        fields = [
            "id",
            "purpose",
            "content",
            "status",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "retain_until",
        ]
        read_only_fields = ["id", "status", "created_by", "created_at", "approved_by", "approved_at", "retain_until"]


class AssessmentListView(APIView):
    """Impact assessments (PIPL Arts. 55-56, GDPR Art. 35), kept at least three years."""

    permission_classes = [Officer]

    @extend_schema(responses={200: AssessmentSerializer(many=True)})
    def get(self, request):
        return Response(AssessmentSerializer(ImpactAssessment.objects.all(), many=True).data)

    @extend_schema(request=AssessmentSerializer, responses={201: AssessmentSerializer})
    def post(self, request):
        data = _body(AssessmentSerializer, request)
        assessment = _call(svc.assessment_create, actor=request_actor(request), **data)
        return Response(AssessmentSerializer(assessment).data, status=201)


class AssessmentApproveView(APIView):
    """Approve an assessment (four eyes: not its author)."""

    permission_classes = [Officer]

    @extend_schema(request=None, responses={200: AssessmentSerializer})
    def post(self, request, assessment_id: int):
        assessment = _call(svc.assessment_approve, actor=request_actor(request), assessment_id=assessment_id)
        return Response(AssessmentSerializer(assessment).data)


class PurposeActivateSerializer(serializers.Serializer):
    code = serializers.CharField()
    active = serializers.BooleanField()


class PurposeActivateView(APIView):
    """Activate a purpose; 409 if it needs an approved impact assessment and has none."""

    permission_classes = [Officer]

    @extend_schema(request=None, responses={200: PurposeActivateSerializer})
    def post(self, request, code: str):
        if not Purpose.objects.filter(code=code).exists():
            raise NotFound("no such purpose")
        purpose = _call(svc.purpose_activate, actor=request_actor(request), purpose=code)
        return Response({"code": purpose.code, "active": purpose.active})


class NotificationConfirmSerializer(serializers.Serializer):
    recipient_id = serializers.IntegerField()
    method = serializers.ChoiceField(
        choices=[("manual", "manual"), ("email", "email"), ("webhook", "webhook")], default="manual"
    )


class RecipientNoticeSerializer(serializers.Serializer):
    recipient_id = serializers.IntegerField()
    name = serializers.CharField()
    contact = serializers.CharField()
    notified = serializers.BooleanField()
    notified_at = serializers.CharField(allow_null=True)


class NotificationStateSerializer(serializers.Serializer):
    request_id = serializers.IntegerField()
    recipients = RecipientNoticeSerializer(many=True)


class DsarRecipientNotificationsView(APIView):
    """GDPR Art. 19: the recipients that had the person's data and whether each was told."""

    permission_classes = [role_required(Role.COMPLIANCE, Role.ADMIN, Role.STEWARD)]

    @extend_schema(responses={200: NotificationStateSerializer})
    def get(self, request, request_id: int):
        dsar = DataSubjectRequest.objects.filter(pk=request_id).first()
        if dsar is None:
            raise NotFound("no such request")
        return Response({"request_id": dsar.pk, "recipients": svc.recipient_notices(dsar)})

    @extend_schema(request=NotificationConfirmSerializer, responses={200: NotificationStateSerializer})
    def post(self, request, request_id: int):
        data = _body(NotificationConfirmSerializer, request)
        out = _call(svc.recipient_notification_confirm, actor=request_actor(request), request_id=request_id, **data)
        return Response(out)
