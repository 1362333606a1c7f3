"""Differentially private analytics: POST /analytics/query and GET /analytics/budget.

Thin views: the spec goes to privacy.dp.engine.dp_query_release unchanged (it validates every
key, so a misspelt option is a 400 with the JSON path, never silently ignored).
"""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import error_body
from api.permissions import role_required
from api.views.base import request_actor
from cdp.actor import Role
from privacy.dp.budget import BudgetExhausted
from privacy.dp.engine import ReleaseResult, dp_budget_status, dp_query_release
from privacy.dp.mechanisms import PrivacyLeakError
from privacy.dp.spec import METRICS, SpecError


class DpQuerySerializer(serializers.Serializer):
    """The query spec (documentation of its shape; the engine validates it strictly)."""

    metric = serializers.ChoiceField(choices=METRICS)
    epsilon = serializers.FloatField(help_text="Privacy loss charged to your budget and the dataset's.")
    dataset = serializers.CharField(required=False, help_text="Default: the first of CDP_DP_DATASETS.")
    population = serializers.JSONField(
        required=False, help_text="Rule tree (cdp.services.rules); active profiles only."
    )
    window = serializers.JSONField(required=False, help_text='{"start": ISO date-time, "end": ISO date-time}')
    group_by = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Up to 2 of channel, journey_stage, month, weekday, hour, trait:<enum key>, property:<enum key>.",
    )
    event = serializers.CharField(required=False)
    value = serializers.CharField(required=False, help_text="A registry property with declared bounds.")
    max_rows_per_person = serializers.IntegerField(required=False)
    bins = serializers.IntegerField(required=False)
    q = serializers.FloatField(required=False)
    steps = serializers.ListField(child=serializers.CharField(), required=False)
    periods = serializers.IntegerField(required=False)


class BudgetAccountSerializer(serializers.Serializer):
    limit = serializers.FloatField()
    spent = serializers.FloatField()
    remaining = serializers.FloatField()


# "global" is a Python keyword, hence the functional form.
BudgetSerializer = type(
    "BudgetSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "Epsilon limit, spent and remaining for the caller (analyst) and the dataset (global).",
        "dataset": serializers.CharField(),
        "period_start": serializers.DateField(),
        "period_end": serializers.DateField(),
        "analyst": BudgetAccountSerializer(),
        "global": BudgetAccountSerializer(),
    },
)


class DpReleaseSerializer(serializers.Serializer):
    release_id = serializers.IntegerField()
    cached = serializers.BooleanField(help_text="True when this is the stored release of an identical spec (no cost).")
    query_hash = serializers.CharField()
    epsilon_charged = serializers.FloatField()
    budget = BudgetSerializer()
    result = serializers.DictField(help_text="rows: [{group, values: {measure: {value, error_95}}}], mechanism, ...")


def dp_release_response(release: Callable[[], ReleaseResult]) -> Response:
    """Run one DP release and shape its answer or its refusal (the analytics query and the segment
    estimate both answer this way): a bad spec is a 400 with the JSON path, an exhausted budget a
    403 `budget_exhausted` with the scope, a mechanism refusal a 400."""
    try:
        released = release()
    except SpecError as exc:
        raise ValidationError(exc.as_details()) from exc
    except BudgetExhausted as exc:
        details = {"scope": exc.scope, "requested": float(exc.requested), "remaining": float(exc.remaining)}
        return Response(error_body("budget_exhausted", str(exc), details), status=403)
    except PrivacyLeakError as exc:
        raise ValidationError({"path": "$", "message": "the mechanism refused this release"}) from exc
    return Response(
        {
            "release_id": released.release_id,
            "cached": released.cached,
            "query_hash": released.spec_hash,
            "epsilon_charged": released.epsilon_charged,
            "budget": released.budget,
            "result": released.result,
        }
    )


class AnalyticsQueryView(APIView):
    """Release one differentially private aggregate, charged to the caller's budget."""

    permission_classes = [role_required(Role.ANALYST, Role.MARKETING)]

    @extend_schema(request=DpQuerySerializer, responses={200: DpReleaseSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"path": "$", "message": "must be a JSON object"})
        return dp_release_response(lambda: dp_query_release(actor=request_actor(request), spec=dict(request.data)))


class AnalyticsBudgetView(APIView):
    """The caller's and the dataset's privacy budget for the current period."""

    permission_classes = [role_required(Role.ANALYST, Role.MARKETING)]

    @extend_schema(
        parameters=[OpenApiParameter("dataset", str, required=False, description="Default: the first dataset.")],
        responses={200: BudgetSerializer},
    )
    def get(self, request):
        try:
            status = dp_budget_status(actor=request_actor(request), dataset=request.query_params.get("dataset"))
        except SpecError as exc:
            raise ValidationError(exc.as_details()) from exc
        return Response(status)
