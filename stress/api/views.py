from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from marketdata.calendar import session_for
from portfolios.api.results import ResultView
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_for
from portfolios.services import owner_changed
from sigmasight.api.caching import results_changed
from sigmasight.api.query import AsOfQuery, DateRangeQuery
from sigmasight.api.users import request_user
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import NotFoundError, ValidationFailed
from stress import services
from stress.api import serializers as s
from stress.models import FactorCorrelation, StressScenario, StressTestResult

CRISES = {
    "2008": "2008 Financial Crisis",
    "covid": "COVID-19 Crash",
    "dotcom": "Dot-com Bust",
}


class StressScenarioViewSet(viewsets.ModelViewSet):
    """The shared library (read-only) and the user's own scenarios."""

    queryset = StressScenario.objects.none()
    serializer_class = s.ScenarioSerializer
    http_method_names = ["get", "post", "patch", "delete"]
    filterset_fields = ["category", "is_active", "is_historical"]
    search_fields = ["name", "description"]
    ordering_fields = ["id", "name", "category"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StressScenario.objects.none()
        user = self.request.user
        return StressScenario.objects.filter(Q(owner__isnull=True) | Q(owner=user)).order_by(
            "category", "name", "id"
        )

    def perform_create(self, serializer: BaseSerializer[StressScenario]) -> None:
        scenario = serializer.save(owner=self.request.user)
        audit_record("scenario.create", request=self.request, obj=scenario)

    def perform_update(self, serializer: BaseSerializer[StressScenario]) -> None:
        fields = sorted(serializer.validated_data)
        audit_record("scenario.update", request=self.request, obj=serializer.save(), fields=fields)
        owner_changed(request_user(self.request).pk)  # stored results show the scenario's name

    def _own(self) -> StressScenario:
        scenario = self.get_object()
        if scenario.owner_id != self.request.user.pk:
            raise PermissionDenied("Library scenarios are read-only; create your own instead.")
        return scenario

    def partial_update(self, request: Request, *args: object, **kwargs: object) -> Response:
        self._own()
        return super().partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        scenario = self._own()
        with transaction.atomic():  # recorded before the delete, undone with it if it fails
            audit_record("scenario.delete", request=request, obj=scenario)
            scenario.delete()
            owner_changed(request_user(request).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


def result_row(r: StressTestResult) -> dict:
    return {
        "scenario": r.scenario.name,
        "scenario_id": r.scenario_id,
        "date": r.date,
        "direct_pnl": r.direct_pnl,
        "correlated_pnl": r.correlated_pnl,
        "total_pnl": r.total_pnl,
        "pnl_pct": r.pnl_pct,
        "by_factor": r.breakdown.get("by_factor", {}),
        "factor_moves": r.breakdown.get("factor_moves", {}),
        "worst_positions": r.breakdown.get("worst_positions", []),
        "by_position": r.breakdown.get("by_position", {}),
    }


def _scenarios_for(request: Request, ids: list[int] | None) -> list[StressScenario] | None:
    if not ids:
        return None
    visible = StressScenario.objects.filter(
        Q(owner__isnull=True) | Q(owner=request.user), pk__in=ids
    )
    found = {scenario.pk: scenario for scenario in visible}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationFailed(
            "Unknown scenarios.", fields={"scenario_ids": [f"No scenario {i}." for i in unknown]}
        )
    return [found[i] for i in dict.fromkeys(ids)]


class StressTestView(APIView):
    @extend_schema(request=s.StressTestBody, responses={200: dict}, tags=["stress"])
    def post(self, request: Request, portfolio_id: int) -> Response:
        portfolio = portfolio_for(request, portfolio_id)
        body = s.StressTestBody(data=request.data)
        body.is_valid(raise_exception=True)
        scenarios = _scenarios_for(request, body.validated_data.get("scenario_ids"))
        as_of = session_for(body.validated_data.get("as_of"))
        results = services.stress_run(
            as_of=as_of, portfolio_ids=[portfolio.pk], scenarios=scenarios
        )
        results_changed([portfolio.pk])
        return Response({"as_of": as_of, "results": [result_row(r) for r in results]})


@extend_schema(responses={200: list[dict]}, tags=["stress"])
class StressResultsView(ResultView):
    query_serializer = DateRangeQuery
    cache_view = "stress-results"
    portfolio_kwarg = "portfolio_id"
    takes_session = False

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        rows = StressTestResult.objects.filter(portfolio=portfolio).select_related("scenario")
        if query.get("start"):
            rows = rows.filter(date__gte=query["start"])
        if query.get("end"):
            rows = rows.filter(date__lte=query["end"])
        return [result_row(r) for r in rows.order_by("date", "scenario__name")[:5000]]


class StressCorrelationsView(APIView):
    @extend_schema(parameters=[AsOfQuery], responses={200: dict}, tags=["stress"])
    def get(self, request: Request) -> Response:
        query = AsOfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        as_of = session_for(query.validated_data.get("as_of"))
        stored = FactorCorrelation.objects.filter(date__lte=as_of).order_by("-date").first()
        if stored is None or (query.validated_data.get("as_of") and stored.date != as_of):
            stored = services.correlation_store(
                as_of, services.factor_model(as_of), settings.SIGMASIGHT_FACTOR_WINDOW
            )
        return Response(
            {
                "as_of": stored.date,
                "lookback": stored.lookback,
                "lambda": stored.lam,
                "factors": stored.factors,
                "matrix": stored.matrix,
            }
        )


class HistoricalView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("crisis", str, OpenApiParameter.PATH, enum=list(CRISES)),
            s.HistoricalQuery,
        ],
        responses={200: dict},
        tags=["stress"],
    )
    def get(self, request: Request, crisis: str) -> Response:
        if crisis not in CRISES:
            raise NotFoundError(f"Unknown crisis '{crisis}'; use one of {', '.join(CRISES)}.")
        query = s.HistoricalQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        scenario = StressScenario.objects.filter(
            owner__isnull=True, is_historical=True, name=CRISES[crisis]
        ).first()
        if scenario is None:
            raise NotFoundError("That replay is not loaded; run manage.py load_stress_scenarios.")
        body: dict = {"scenario": s.ScenarioSerializer(scenario, context={"request": request}).data}
        if "portfolio" in query.validated_data:
            portfolio = portfolio_for(request, query.validated_data["portfolio"])
            result, written = services.stress_replay(portfolio_id=portfolio.pk, scenario=scenario)
            if written:
                results_changed([portfolio.pk])
            body["result"] = result_row(result) if result else None
        return Response(body)
