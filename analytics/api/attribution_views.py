"""GET /risk/attribution/: a portfolio's stored P&L attribution over a range of sessions."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema

from analytics.api import attribution_serializers as s
from analytics.attribution import attribution_series
from portfolios.api.results import ResultView
from portfolios.models import Portfolio


@extend_schema(responses={200: s.PnlAttributionSerializer}, tags=["risk"])
class RiskAttributionView(ResultView):
    """Each day's P&L split into factors and specific (factor P&L = the previous session's
    dollar exposures x the day's factor moves), and by position, underlying or the options'
    Greeks (`by`). Stored by the daily batch and the rebuilt history; every day's parts sum to
    its `total_pnl`. Amounts are numbers in the book's currency."""

    query_serializer = s.AttributionQuery
    cache_view = "risk-attribution"
    takes_session = False

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        body = attribution_series(
            portfolio=portfolio, start=query.get("start"), end=query.get("end"), by=query["by"]
        )
        return s.PnlAttributionSerializer(body).data
