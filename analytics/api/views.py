from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import numpy as np
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors, services
from analytics.api import serializers as s
from analytics.calculations import aggregation
from marketdata.calendar import session_for
from portfolios.api.results import ResultView
from portfolios.models import Portfolio
from sigmasight.api.query import PortfolioQuery


class GreeksResultView(ResultView):
    """Results read with the stored Greeks: by default, the latest session that has them."""

    def session(self, portfolio: Portfolio, asked: date | None) -> date:
        return session_for(asked or selectors.latest_greeks_date(portfolio))


@extend_schema(responses={200: s.SummarySerializer}, tags=["portfolios"])
class PortfolioSummaryView(GreeksResultView):
    cache_view = "summary"
    portfolio_kwarg: ClassVar[str | None] = "pk"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        return s.SummarySerializer(
            services.portfolio_summary(portfolio=portfolio, as_of=as_of)
        ).data


@extend_schema(description="The summary of your default (first) portfolio.")
class DefaultPortfolioSummaryView(PortfolioSummaryView):
    portfolio_kwarg = None


@extend_schema(responses={200: s.RiskGreeksSerializer}, tags=["risk"])
class RiskGreeksView(GreeksResultView):
    query_serializer = PortfolioQuery
    cache_view = "risk-greeks"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        frame, _ = selectors.book_frame([portfolio.pk], as_of)
        positions = [
            {
                "position": int(row.id),
                "symbol": row.symbol,
                **{g: float(getattr(row, g)) for g in aggregation.GREEKS},
                "dollar_delta": None if np.isnan(row.dollar_delta) else float(row.dollar_delta),
                "implied_volatility": None
                if np.isnan(row.implied_volatility)
                else float(row.implied_volatility),
                "volatility": None if np.isnan(row.volatility) else float(row.volatility),
                "source": row.volatility_source,
                **_style_fields(row),
            }
            for row in frame.itertuples()
            if isinstance(row.volatility_source, str)
        ]
        totals = aggregation.greeks(frame)
        return s.RiskGreeksSerializer(
            {"as_of": as_of, "portfolio": totals, "positions": positions}
        ).data


def _style_fields(row: Any) -> dict[str, Any]:
    """An option row's exercise style, dividend yield and early exercise premium (per share and
    for the position); None for a stock."""
    if not row.is_option:
        return dict.fromkeys(
            ("style", "dividend_yield", "early_exercise_premium", "early_exercise_value")
        )

    def number(value: Any) -> float | None:
        return None if value is None or np.isnan(value) else float(value)

    premium = number(row.early_exercise_premium)
    return {
        "style": row.exercise_style,
        "dividend_yield": number(row.dividend_yield),
        "early_exercise_premium": premium,
        "early_exercise_value": None
        if premium is None
        else premium * float(row.quantity) * float(row.multiplier),
    }


class GreeksCalculateView(APIView):
    @extend_schema(
        request=s.CalculateSerializer,
        responses={200: s.CalculatedListSerializer},
        tags=["risk"],
        description="Price and Greeks (mibian's units) for up to 10,000 options at once, European (Black-Scholes-Merton) or American (Bjerksund-Stensland 2002) by `style`. "
        "Per share, or position-level with `quantity` (x quantity x 100).",
    )
    def post(self, request: Request) -> Response:
        body = s.CalculateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(
            {"results": services.greeks_calculate(options=body.validated_data["options"])}
        )
