"""Time series read from portfolio snapshots (API.md: exposures and performance)."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema

from analytics import snapshots
from analytics.api import serializers as s
from portfolios.api.results import ResultView
from portfolios.models import Portfolio
from sigmasight.api.query import DateRangeQuery


class SnapshotResultView(ResultView):
    """A series over `?start=&end=` of one portfolio (`/portfolios/{pk}/...`)."""

    query_serializer = DateRangeQuery
    portfolio_kwarg = "pk"
    takes_session = False


@extend_schema(
    responses={200: s.SnapshotExposureSerializer(many=True)},
    tags=["portfolios"],
    description="Exposures per session from the portfolio's snapshots.",
)
class ExposuresView(SnapshotResultView):
    cache_view = "exposures"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        rows = snapshots.exposure_series(portfolio=portfolio, **query)
        return s.SnapshotExposureSerializer(rows, many=True).data


@extend_schema(
    responses={200: s.PerformanceSerializer},
    tags=["portfolios"],
    description="Equity and returns per session from the portfolio's snapshots, with return "
    "statistics (null when there are too few points).",
)
class PerformanceView(SnapshotResultView):
    cache_view = "performance"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        performance = snapshots.portfolio_performance(portfolio=portfolio, **query)
        return s.PerformanceSerializer(performance).data
