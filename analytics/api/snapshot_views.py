"""Time series read from portfolio snapshots (API.md: exposures and performance)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import snapshots
from analytics.api.views import portfolio_for
from sigmasight.api.caching import cached_response
from sigmasight.api.query import QuerySerializer


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=2)


def _statistic(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class DateRangeQuery(QuerySerializer):
    start = serializers.DateField(required=False, help_text="first session (inclusive)")
    end = serializers.DateField(required=False, help_text="last session (inclusive)")

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"start": ["Must be on or before end."]})
        return attrs


class SnapshotExposureSerializer(serializers.Serializer):
    date = serializers.DateField()
    gross = _money()
    net = _money()
    long = _money()
    short = _money()
    delta_adjusted = _money()


class PerformancePointSerializer(serializers.Serializer):
    date = serializers.DateField()
    equity = _money()
    daily_pnl = _money()
    daily_return = serializers.FloatField(help_text="decimal")
    cumulative_return = serializers.FloatField(help_text="compounded since the first point")


class PerformanceSerializer(serializers.Serializer):
    series = PerformancePointSerializer(many=True)
    total_return = _statistic("compounded over the series, decimal")
    annualized_return = _statistic("geometric, 252 sessions a year")
    volatility = _statistic("annualized stdev of daily returns")
    sharpe = _statistic("annualized, over the cached short rate")
    sortino = _statistic("annualized, over the cached short rate")
    max_drawdown = _statistic("negative decimal")


def _range(request: Request) -> dict:
    query = DateRangeQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class ExposuresView(APIView):
    @extend_schema(
        parameters=[DateRangeQuery], responses={200: SnapshotExposureSerializer(many=True)},
        tags=["portfolios"], description="Exposures per session from the portfolio's snapshots.",
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        dates = _range(request)
        portfolio = portfolio_for(request, pk)

        def compute() -> Response:
            rows = snapshots.exposure_series(portfolio=portfolio, **dates)
            return Response(SnapshotExposureSerializer(rows, many=True).data)

        return cached_response("exposures", portfolio.pk, dates, compute)


class PerformanceView(APIView):
    @extend_schema(
        parameters=[DateRangeQuery], responses={200: PerformanceSerializer}, tags=["portfolios"],
        description="Equity and returns per session from the portfolio's snapshots, with return "
        "statistics (null when there are too few points).",
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        dates = _range(request)
        portfolio = portfolio_for(request, pk)

        def compute() -> Response:
            performance = snapshots.portfolio_performance(portfolio=portfolio, **dates)
            return Response(PerformanceSerializer(performance).data)

        return cached_response("performance", portfolio.pk, dates, compute)
