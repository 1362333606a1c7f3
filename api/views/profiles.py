"""Profile 360, lookup, event timeline and unmerge. Every call needs a purpose (X-Purpose)."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import Conflict
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from cdp.services.profiles import (
    ProfileMoved,
    ProfileNotFound,
    UnmergeError,
    event_properties,
    profile_events,
    profile_lookup,
    profile_read,
    profile_unmerge,
)
from identity.registry import identifier_types

PURPOSE = OpenApiParameter(
    "X-Purpose", str, OpenApiParameter.HEADER, required=False, description="Why you read (or ?purpose=); required."
)


class ProfileSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    journey_stage = serializers.CharField()
    first_seen_at = serializers.DateTimeField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    traits = serializers.DictField()
    attributes = serializers.DictField()
    identifiers = serializers.ListField(child=serializers.DictField())
    merges = serializers.ListField(child=serializers.DictField())
    refusals = serializers.ListField(child=serializers.DictField())
    event_count = serializers.IntegerField()


class MovedSerializer(serializers.Serializer):
    survivor_id = serializers.UUIDField()
    location = serializers.CharField()


def _moved(exc: ProfileMoved, request, name: str) -> Response:
    location = reverse(name, kwargs={"profile_id": exc.survivor_id})
    query = request.META.get("QUERY_STRING", "")
    location = f"{location}?{query}" if query else location
    body = {"survivor_id": str(exc.survivor_id), "location": location}
    return Response(body, status=308, headers={"Location": location})


class ProfileDetailView(APIView):
    """One profile decrypted, with identifiers and merge history (steward, compliance).

    A merged profile's id answers 308 with the survivor's location.
    """

    permission_classes = [role_required(Role.STEWARD, Role.COMPLIANCE)]

    @extend_schema(parameters=[PURPOSE], responses={200: ProfileSerializer, 308: MovedSerializer})
    def get(self, request, profile_id: uuid.UUID):
        try:
            view = profile_read(actor=request_actor(request), profile_id=profile_id)
        except ProfileNotFound as exc:
            raise NotFound(str(exc)) from exc
        except ProfileMoved as exc:
            return _moved(exc, request, "api:profile-detail")
        p = view.profile
        body = {
            "id": p.id,
            "status": p.status,
            "journey_stage": p.journey_stage,
            "first_seen_at": p.first_seen_at,
            "last_seen_at": p.last_seen_at,
            "traits": view.traits,
            "attributes": p.attributes,
            "identifiers": view.identifiers,
            "merges": view.merges,
            "refusals": view.refusals,
            "event_count": view.event_count,
        }
        return Response(ProfileSerializer(body).data)


class LookupSerializer(serializers.Serializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in identifier_types():
            self.fields[name] = serializers.CharField(required=False, max_length=256)

    email = serializers.CharField(required=False, max_length=256)
    phone = serializers.CharField(required=False, max_length=256)
    external_id = serializers.CharField(required=False, max_length=256)


class LookupMatchSerializer(serializers.Serializer):
    profile_id = serializers.UUIDField()
    matched_by = serializers.ListField(child=serializers.CharField())


class LookupResponseSerializer(serializers.Serializer):
    matches = LookupMatchSerializer(many=True)


class ProfileLookupView(APIView):
    """Find profiles by identifier through the blind index (steward).

    Prefer POST with a JSON body: query strings end up in proxy and server logs, and an
    identifier is personal data. GET with ?email=&phone=&external_id= is kept for tools.
    """

    permission_classes = [role_required(Role.STEWARD)]

    def _lookup(self, request, data) -> Response:
        params = LookupSerializer(data=data)
        params.is_valid(raise_exception=True)
        try:
            matches = profile_lookup(actor=request_actor(request), identifiers=dict(params.validated_data))
        except ValueError as exc:
            raise ValidationError({"identifiers": [str(exc)]}) from exc
        return Response(LookupResponseSerializer({"matches": matches}).data)

    @extend_schema(
        parameters=[
            PURPOSE,
            OpenApiParameter("email", str, required=False),
            OpenApiParameter("phone", str, required=False),
            OpenApiParameter("external_id", str, required=False),
        ],
        responses=LookupResponseSerializer,
    )
    def get(self, request):
        data = {k: v for k, v in request.query_params.items() if k != "purpose"}
        return self._lookup(request, data)

    @extend_schema(parameters=[PURPOSE], request=LookupSerializer, responses=LookupResponseSerializer)
    def post(self, request):
        return self._lookup(request, request.data)


class TimelinePagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-occurred_at", "-id")


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    name = serializers.CharField()
    channel = serializers.CharField()
    source = serializers.CharField(source="source.name")
    message_id = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    properties = serializers.SerializerMethodField()

    def get_properties(self, event) -> dict:
        return event_properties(event)


class ProfileEventsView(APIView):
    """The profile's events, newest first, cursor-paginated (steward, compliance)."""

    permission_classes = [role_required(Role.STEWARD, Role.COMPLIANCE)]
    pagination_class = TimelinePagination

    @extend_schema(parameters=[PURPOSE], responses=EventSerializer(many=True))
    def get(self, request, profile_id: uuid.UUID):
        try:
            events = profile_events(actor=request_actor(request), profile_id=profile_id)
        except ProfileNotFound as exc:
            raise NotFound(str(exc)) from exc
        except ProfileMoved as exc:
            return _moved(exc, request, "api:profile-events")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventSerializer(page, many=True).data)


class UnmergeResponseSerializer(serializers.Serializer):
    evidence_id = serializers.IntegerField()
    restored = serializers.UUIDField()
    survivor = serializers.UUIDField()
    identifiers = serializers.IntegerField()
    events = serializers.IntegerField()
    observations = serializers.IntegerField()


class ProfileUnmergeView(APIView):
    """Undo the latest merge of this (absorbed) profile (steward)."""

    permission_classes = [role_required(Role.STEWARD)]

    @extend_schema(parameters=[PURPOSE], request=None, responses=UnmergeResponseSerializer)
    def post(self, request, profile_id: uuid.UUID):
        try:
            result = profile_unmerge(actor=request_actor(request), profile_id=profile_id)
        except ProfileNotFound as exc:
            raise NotFound(str(exc)) from exc
        except UnmergeError as exc:
            raise Conflict(str(exc)) from exc
        return Response(UnmergeResponseSerializer(result).data)
