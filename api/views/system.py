"""Health, the caller's identity, and API key listing."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.keys import ApiKeyError, api_key_create, api_key_revoke
from api.models import API_ROLES, ApiKey
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from cdp.models import Channel


def _database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # report, do not raise: health must always answer
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}


def _broker_status() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"ok": True, "mode": "eager"}
    from cdp.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "mode": "broker", "transport": app.connection_for_write().transport_cls}
    except Exception as exc:
        return {"ok": False, "mode": "broker", "error": type(exc).__name__}


class HealthView(APIView):
    """Liveness and readiness: database and broker reachability. No authentication."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {"status": serializers.CharField(), "database": serializers.DictField(), "broker": serializers.DictField()},
        ),
        auth=[],
    )
    def get(self, request):
        database, broker = _database_status(), _broker_status()
        healthy = database["ok"] and broker["ok"]
        return Response(
            {"status": "ok" if healthy else "degraded", "database": database, "broker": broker},
            status=200 if healthy else 503,
        )


class MeSerializer(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.CharField()
    prefix = serializers.CharField()
    source = serializers.CharField(allow_null=True)


class MeView(APIView):
    """Who am I: the calling key's name, role and bound source."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        key: ApiKey = request.user
        return Response(
            MeSerializer(
                {
                    "name": key.name,
                    "role": key.role,
                    "prefix": key.prefix,
                    "source": key.source.name if key.source else None,
                }
            ).data
        )


class ApiKeySerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["prefix", "name", "role", "source", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=API_ROLES)
    source = serializers.SlugField(max_length=64, required=False, default="")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default="")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself; shown once and never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyListView(ListAPIView):
    """List every API key (never the secret or its hash), or create one. Admin only."""

    permission_classes = [role_required(Role.ADMIN)]
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.select_related("source").order_by("-created_at")

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        params = ApiKeyCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            created = api_key_create(
                actor=request_actor(request),
                name=data["name"],
                role=data["role"],
                source_name=data["source"],
                channel=data["channel"],
            )
        except ApiKeyError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        body = ApiKeySerializer(created.api_key).data | {"key": created.plaintext}
        return Response(body, status=201)


class ApiKeyRevokeView(APIView):
    """Revoke a key by prefix. Admin only; revoked keys fail with 401 from then on."""

    permission_classes = [role_required(Role.ADMIN)]

    @extend_schema(request=None, responses=ApiKeySerializer)
    def delete(self, request, prefix: str):
        try:
            api_key = api_key_revoke(actor=request_actor(request), prefix=prefix)
        except ApiKeyError as exc:
            raise NotFound(str(exc)) from exc
        return Response(ApiKeySerializer(api_key).data)
