from __future__ import annotations

from datetime import date

import numpy as np
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors, services
from analytics.api import serializers as s
from analytics.calculations import aggregation
from marketdata.calculations import black_scholes as bs
from marketdata.providers.base import RATE_SHORT
from marketdata.services import current_prices
from portfolios.models import Portfolio
from sigmasight.api.caching import cached_response
from sigmasight.exceptions import NotFoundError, ValidationFailed


def portfolio_for(request: Request, portfolio_id: int | None) -> Portfolio:
    """The user's portfolio by id, or their first one; another user's is a 404."""
    portfolios = Portfolio.objects.filter(owner=request.user).order_by("id")
    if portfolio_id is None:
        portfolio = portfolios.first()
        if portfolio is None:
            raise NotFoundError("You have no portfolio yet.")
        return portfolio
    return get_object_or_404(portfolios, pk=portfolio_id)


def _as_of(portfolio: Portfolio, asked: date | None) -> date:
    return services.session_for(asked or selectors.latest_greeks_date(portfolio))


def _summary(portfolio: Portfolio, asked: date | None) -> Response:
    as_of = _as_of(portfolio, asked)
    return cached_response(
        "summary",
        portfolio.pk,
        {"as_of": as_of},
        lambda: Response(
            s.SummarySerializer(services.portfolio_summary(portfolio=portfolio, as_of=as_of)).data
        ),
    )


class PortfolioSummaryView(APIView):
    @extend_schema(
        parameters=[s.AsOfQuery], responses={200: s.SummarySerializer}, tags=["portfolios"]
    )
    def get(self, request: Request, pk: int) -> Response:
        query = s.AsOfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        portfolio = portfolio_for(request, pk)
        return _summary(portfolio, query.validated_data.get("as_of"))


class DefaultPortfolioSummaryView(APIView):
    @extend_schema(
        parameters=[s.AsOfQuery], responses={200: s.SummarySerializer}, tags=["portfolios"],
        description="The summary of your default (first) portfolio.",
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        query = s.AsOfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        portfolio = portfolio_for(request, None)
        return _summary(portfolio, query.validated_data.get("as_of"))


class RiskGreeksView(APIView):
    @extend_schema(
        parameters=[s.PortfolioQuery], responses={200: s.RiskGreeksSerializer}, tags=["risk"]
    )
    def get(self, request: Request) -> Response:
        query = s.PortfolioQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        portfolio = portfolio_for(request, query.validated_data.get("portfolio"))
        as_of = _as_of(portfolio, query.validated_data.get("as_of"))
        return cached_response(
            "risk-greeks", portfolio.pk, {"as_of": as_of}, lambda: self._greeks(portfolio, as_of)
        )

    @staticmethod
    def _greeks(portfolio: Portfolio, as_of: date) -> Response:
        frame, _ = services.portfolio_frame(portfolio, as_of)
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
            }
            for row in frame.itertuples()
            if isinstance(row.volatility_source, str)
        ]
        totals = aggregation.greeks(frame)
        return Response(
            s.RiskGreeksSerializer(
                {"as_of": as_of, "portfolio": totals, "positions": positions}
            ).data
        )


class GreeksCalculateView(APIView):
    @extend_schema(
        request=s.CalculateSerializer, responses={200: s.CalculatedListSerializer}, tags=["risk"],
        description="Black-Scholes price and Greeks (mibian's units) for up to 10,000 options at once. "
        "Per share, or position-level with `quantity` (x quantity x 100).",
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        body = s.CalculateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = body.validated_data["options"]
        today = date.today()
        default_rate = self._default_rate()
        spot = np.array([o["underlying_price"] for o in options])
        strike = np.array([o["strike"] for o in options])
        days = np.array(
            [
                o["days_to_expiry"] if "days_to_expiry" in o else (o["expiration"] - today).days
                for o in options
            ],
            dtype=float,
        )
        years = days / 365.0
        rate = np.array([o.get("rate", default_rate) for o in options])
        dividend = np.array([o.get("dividend_yield", 0.0) for o in options])
        is_call = np.array([o["option_type"].upper().startswith("C") for o in options])
        vol = np.array([o.get("volatility", np.nan) for o in options])
        implied = np.full(len(options), np.nan)
        solve = np.array(["option_price" in o for o in options])
        if solve.any():
            prices = np.array([o["option_price"] for o in options if "option_price" in o])
            solved = bs.implied_volatility(
                prices,
                spot[solve],
                strike[solve],
                years[solve],
                rate[solve],
                is_call[solve],
                dividend[solve],
            )
            implied[solve] = solved.sigma
            bad = np.flatnonzero(solve)[~np.isfinite(solved.sigma)]
            if len(bad):
                raise ValidationFailed(
                    "Some option prices have no implied volatility.",
                    fields={
                        "options": {
                            str(i): {
                                "option_price": [
                                    "Outside the no-arbitrage bounds for these inputs (or expired)."
                                ]
                            }
                            for i in bad
                        }
                    },
                )
            vol[solve] = solved.sigma
        result = bs.greeks(spot, strike, years, rate, vol, is_call, dividend)
        scale = np.array(
            [o.get("quantity", 1.0) * 100 if "quantity" in o else 1.0 for o in options]
        )
        rows = [
            {
                "price": float(result.price[i]),
                "delta": float(result.delta[i] * scale[i]),
                "gamma": float(result.gamma[i] * scale[i]),
                "theta": float(result.theta[i] * scale[i]),
                "vega": float(result.vega[i] * scale[i]),
                "rho": float(result.rho[i] * scale[i]),
                "implied_volatility": None if np.isnan(implied[i]) else float(implied[i]),
            }
            for i in range(len(options))
        ]
        return Response({"results": rows})

    @staticmethod
    def _default_rate() -> float:
        from django.conf import settings

        quote = current_prices([RATE_SHORT]).get(RATE_SHORT)
        return float(quote.price) if quote else settings.SIGMASIGHT_DEFAULT_RATE
