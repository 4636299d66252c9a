"""Where the risk comes from: risk/liquidity/ and risk/concentration/ (analytics.liquidity)."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema

from analytics import liquidity
from analytics.api import liquidity_serializers as s
from analytics.api.views import GreeksResultView
from portfolios.models import Portfolio


@extend_schema(responses={200: s.LiquiditySerializer}, tags=["risk"])
class LiquidityView(GreeksResultView):
    """Days to liquidate each position at a share (`participation`) of its underlying's average
    daily volume over the last 20 sessions (stored volumes; fewer than 10: unknown, with a
    reason), and the share of the book's gross exposure sold within 1, 5 and 10 sessions.
    Options trade through their underlying's volume at their delta (|position delta| shares):
    option volume is not stored. Positions above SIGMASIGHT_LIQUIDITY_FLAG_DAYS are flagged."""

    query_serializer = s.LiquidityQuery
    cache_view = "risk-liquidity"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        report = liquidity.portfolio_liquidity(
            portfolio_id=portfolio.pk, as_of=as_of, participation=query.get("participation")
        )
        return s.LiquiditySerializer(report).data


@extend_schema(responses={200: s.ConcentrationSerializer}, tags=["risk"])
class ConcentrationView(GreeksResultView):
    """How much of the book's gross exposure rests on a few names (underlyings: options at their
    premium, as in the summary's gross): the top 5 and 10 names' (and `top`'s) share, the
    Herfindahl index of the names' weights and 1 / Herfindahl; and gross, net, long and short
    exposure by the stored sector and industry (Unclassified when none is stored)."""

    query_serializer = s.ConcentrationQuery
    cache_view = "risk-concentration"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        report = liquidity.portfolio_concentration(
            portfolio_id=portfolio.pk, as_of=as_of, top=query["top"]
        )
        return s.ConcentrationSerializer(report).data
