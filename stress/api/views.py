from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api.views import portfolio_for
from analytics.services import session_for
from sigmasight.api.caching import cached_response, owner_changed, results_changed
from sigmasight.api.fields import id_field
from sigmasight.api.query import QuerySerializer
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import NotFoundError, ValidationFailed
from stress import services
from stress.models import FactorCorrelation, StressScenario, StressTestResult

CRISES = {
    "2008": "2008 Financial Crisis",
    "covid": "COVID-19 Crash",
    "dotcom": "Dot-com Bust",
}


class ScenarioSerializer(serializers.ModelSerializer):
    shocks = serializers.DictField(child=serializers.FloatField(), allow_empty=False)
    is_library = serializers.SerializerMethodField()

    class Meta:
        model = StressScenario
        fields = [
            "id",
            "name",
            "category",
            "description",
            "shocks",
            "is_active",
            "is_historical",
            "is_library",
        ]
        read_only_fields = ["id", "is_library"]

    def get_is_library(self, scenario: StressScenario) -> bool:
        return scenario.owner_id is None

    def validate_shocks(self, value: dict) -> dict:
        from stress.library import validate_shocks

        try:
            return validate_shocks(value)
        except ValidationFailed as exc:
            raise serializers.ValidationError(exc.fields.get("shocks", [exc.message])) from exc

    def validate_name(self, value: str) -> str:
        owner = self.context["request"].user
        clash = StressScenario.objects.filter(owner=owner, name=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(f"You already have a scenario named '{value}'.")
        return value


class StressScenarioViewSet(viewsets.ModelViewSet):
    """The shared library (read-only) and the user's own scenarios."""

    queryset = StressScenario.objects.none()
    serializer_class = ScenarioSerializer
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

    def perform_create(self, serializer: ScenarioSerializer) -> None:
        scenario = serializer.save(owner=self.request.user)
        audit_record("scenario.create", request=self.request, obj=scenario)

    def perform_update(self, serializer: ScenarioSerializer) -> None:
        fields = sorted(serializer.validated_data)
        audit_record("scenario.update", request=self.request, obj=serializer.save(), fields=fields)
        owner_changed(self.request.user.pk)  # stored results show the scenario's name

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
            owner_changed(request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StressTestBody(serializers.Serializer):
    scenario_ids = serializers.ListField(child=id_field(), required=False, allow_empty=False)
    as_of = serializers.DateField(required=False)


def result_row(r: StressTestResult) -> dict:
    return {
        "scenario": r.scenario.name, "scenario_id": r.scenario_id, "date": r.date,
        "direct_pnl": r.direct_pnl, "correlated_pnl": r.correlated_pnl, "total_pnl": r.total_pnl,
        "pnl_pct": r.pnl_pct, "by_factor": r.breakdown.get("by_factor", {}),
        "factor_moves": r.breakdown.get("factor_moves", {}),
        "worst_positions": r.breakdown.get("worst_positions", []),
        "by_position": r.breakdown.get("by_position", {}),
    }  # fmt: skip


def _scenarios_for(request: Request, ids: list[int] | None) -> list[StressScenario] | None:
    if not ids:
        return None
    visible = StressScenario.objects.filter(
        Q(owner__isnull=True) | Q(owner=request.user), pk__in=ids
    )
    found = {s.pk: s for s in visible}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationFailed(
            "Unknown scenarios.", fields={"scenario_ids": [f"No scenario {i}." for i in unknown]}
        )
    return [found[i] for i in dict.fromkeys(ids)]


class StressTestView(APIView):
    @extend_schema(request=StressTestBody, responses={200: dict}, tags=["stress"])
    def post(self, request: Request, portfolio_id: int) -> Response:
        portfolio = portfolio_for(request, portfolio_id)
        body = StressTestBody(data=request.data)
        body.is_valid(raise_exception=True)
        scenarios = _scenarios_for(request, body.validated_data.get("scenario_ids"))
        as_of = session_for(body.validated_data.get("as_of"))
        results = services.stress_run(
            as_of=as_of, portfolio_ids=[portfolio.pk], scenarios=scenarios
        )
        results_changed([portfolio.pk])
        return Response({"as_of": as_of, "results": [result_row(r) for r in results]})


class RangeQuery(QuerySerializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)


class StressResultsView(APIView):
    @extend_schema(parameters=[RangeQuery], responses={200: list[dict]}, tags=["stress"])
    def get(self, request: Request, portfolio_id: int) -> Response:
        portfolio = portfolio_for(request, portfolio_id)
        query = RangeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        dates = query.validated_data

        def compute() -> Response:
            rows = StressTestResult.objects.filter(portfolio=portfolio).select_related("scenario")
            if dates.get("start"):
                rows = rows.filter(date__gte=dates["start"])
            if dates.get("end"):
                rows = rows.filter(date__lte=dates["end"])
            return Response([result_row(r) for r in rows.order_by("date", "scenario__name")[:5000]])

        return cached_response("stress-results", portfolio.pk, dates, compute)


class AsOfQuery(QuerySerializer):
    as_of = serializers.DateField(required=False)


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
        return Response({"as_of": stored.date, "lookback": stored.lookback, "lambda": stored.lam,
                         "factors": stored.factors, "matrix": stored.matrix})  # fmt: skip


class HistoricalQuery(QuerySerializer):
    portfolio = id_field(required=False, help_text="also replay the crisis on this portfolio")


class HistoricalView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("crisis", str, OpenApiParameter.PATH, enum=list(CRISES)),
            HistoricalQuery,
        ],
        responses={200: dict},
        tags=["stress"],
    )
    def get(self, request: Request, crisis: str) -> Response:
        if crisis not in CRISES:
            raise NotFoundError(f"Unknown crisis '{crisis}'; use one of {', '.join(CRISES)}.")
        query = HistoricalQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        scenario = StressScenario.objects.filter(
            owner__isnull=True, is_historical=True, name=CRISES[crisis]
        ).first()
        if scenario is None:
            raise NotFoundError("That replay is not loaded; run manage.py load_stress_scenarios.")
        body: dict = {"scenario": ScenarioSerializer(scenario, context={"request": request}).data}
        if "portfolio" in query.validated_data:
            portfolio = portfolio_for(request, query.validated_data["portfolio"])
            results = services.stress_run(portfolio_ids=[portfolio.pk], scenarios=[scenario])
            results_changed([portfolio.pk])
            body["result"] = result_row(results[0]) if results else None
        return Response(body)
