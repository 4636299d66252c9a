"""Factor model, scenario and risk-metric endpoints (API.md "Risk and factors")."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import risk_metrics as rm
from analytics import risk_services as rs
from analytics.api import serializers as s
from analytics.calculations import factors as fx
from analytics.calculations import risk
from analytics.models import FactorDefinition, PortfolioFactorExposure, PositionFactorExposure
from analytics.provenance import data_quality_sources
from analytics.selectors import closes_panel
from marketdata.calendar import session_for
from portfolios.api.results import ResultView
from portfolios.models import Portfolio, Position
from portfolios.selectors import portfolio_for
from sigmasight.api.caching import results_changed
from sigmasight.api.query import PortfolioQuery
from sigmasight.api.users import request_user
from sigmasight.exceptions import InsufficientHistory


def _moves(text: str | None, default: tuple[float, ...], limit: float) -> list[float]:
    if not text:
        return list(default)
    try:
        moves = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise serializers.ValidationError(
            {"moves": ["Comma-separated decimals, e.g. -0.02,0.02."]}
        ) from exc
    if not moves or len(moves) > 20 or any(not -limit <= m <= limit for m in moves):
        raise serializers.ValidationError(
            {"moves": [f"1 to 20 moves, each between -{limit} and {limit}."]}
        )
    return moves


def ensure_factor_results(portfolio: Portfolio, as_of: date, *, required: bool = True) -> None:
    """Compute the session's betas for this portfolio when the batch has not (idempotent: a
    book whose betas cannot be estimated writes nothing, so asking again writes nothing either).
    With `required`, a book holding positions of which none has a beta is refused
    (InsufficientHistory naming the series and their sessions); an empty book is not."""
    held = Position.objects.filter(portfolio=portfolio, closed_at__isnull=True)
    if not held.exists():
        return
    stored = PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=as_of)
    if not stored.exists():
        report = rs.factors_compute(as_of=as_of, portfolio_ids=[portfolio.pk])
        written = report.written
        written += rs.ir_betas_compute(as_of=as_of, portfolio_ids=[portfolio.pk]).written
        if written:
            results_changed([portfolio.pk])  # the summary's betas, scenarios...: cached before
    if required and not stored.filter(positions_with_beta__gt=0).exists():
        raise _no_betas(sorted(set(held.values_list("underlying_symbol", flat=True))), as_of)


def _no_betas(symbols: list[str], as_of: date) -> InsufficientHistory:
    """Why no position of a book has a factor beta: each series' daily returns in the window
    against what a beta needs, and the factors the model could not use."""
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    needed = settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS
    X, left_out = rs.factor_model_returns(as_of, window)
    have = closes_panel(symbols, as_of, window + 1).pct_change(fill_method=None).notna().sum()
    series = {sym: int(have.get(sym, 0)) for sym in symbols}
    named = ", ".join(f"{sym} has {n}" for sym, n in list(series.items())[:5])
    if X.empty:
        why = "no factor has enough history (" + "; ".join(left_out.values()) + ")"
    else:
        why = f"{named} daily returns in the {window} sessions to {as_of.isoformat()}"
    return InsufficientHistory(
        f"No position has the {needed} sessions of returns a factor beta needs: {why}."[:600],
        fields={"required": needed, "series": series, "factors_left_out": left_out},
    )


@extend_schema(tags=["risk"], responses={200: s.RISK_FACTORS})
class RiskFactorsView(ResultView):
    query_serializer = PortfolioQuery
    cache_view = "risk-factors"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        ensure_factor_results(portfolio, as_of)
        rows = portfolio_factor_rows(portfolio, as_of)
        symbols = Position.objects.filter(portfolio=portfolio, closed_at__isnull=True)
        rows["data_quality"] = data_quality_sources(
            set(symbols.values_list("underlying_symbol", flat=True)), as_of, rates=False
        )
        return rows


def portfolio_factor_rows(portfolio: Portfolio, as_of: date) -> dict:
    stored = list(
        PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=as_of)
        .select_related("factor")
        .order_by("factor__display_order")
    )
    positions = PositionFactorExposure.objects.filter(position__portfolio=portfolio, date=as_of)
    stats: dict[int, dict] = {}
    for factor_id, r2, weight, observations, capped in positions.values_list(
        "factor_id", "r_squared", "dollar_exposure", "observations", "capped"
    ):
        stat = stats.setdefault(factor_id, {"w": 0.0, "wr2": 0.0, "obs": observations, "capped": 0})
        stat["w"] += abs(weight)
        stat["wr2"] += abs(weight) * r2
        stat["obs"] = min(stat["obs"], observations)
        stat["capped"] += int(capped)
    rows = []
    for row in stored:
        stat = stats.get(row.factor_id, {"w": 0.0, "wr2": 0.0, "obs": 0, "capped": 0})
        rows.append(
            {
                "factor": row.factor.name,
                "etf_proxy": row.factor.etf_proxy,
                "beta": row.beta,
                "dollar_exposure": row.dollar_exposure,
                "r_squared": stat["wr2"] / stat["w"] if stat["w"] else None,
                "observations": stat["obs"],
                "capped": stat["capped"],
            }
        )
    normalized = stored[0].normalized_by if stored else "equity"
    return {"as_of": as_of, "portfolio": portfolio.pk, "normalized_by": normalized, "factors": rows}


class FactorDefinitionsView(generics.ListAPIView):
    """Shared reference data: every user sees the same definitions."""

    queryset = FactorDefinition.objects.order_by("display_order", "id")
    serializer_class = s.FactorDefinitionSerializer
    filterset_fields = ["factor_type", "is_active"]
    ordering_fields = ["display_order", "name"]


@extend_schema(tags=["factors"], responses={200: dict})
class FactorExposuresView(ResultView):
    query_serializer = s.ExposureQuery
    cache_view = "factor-exposures"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        ensure_factor_results(portfolio, as_of)
        if query["level"] == "portfolio":
            return portfolio_factor_rows(portfolio, as_of)
        rows = (
            PositionFactorExposure.objects.filter(position__portfolio=portfolio, date=as_of)
            .select_related("factor", "position")
            .order_by("position_id", "factor__display_order")
        )
        positions: dict[int, dict] = {}
        for r in rows:
            entry = positions.setdefault(
                r.position_id,
                {
                    "position": r.position_id,
                    "symbol": r.position.symbol,
                    "r_squared": r.r_squared,
                    "observations": r.observations,
                    "betas": {},
                    "dollar_exposures": {},
                    "capped": [],
                },
            )
            entry["betas"][r.factor.name] = r.beta
            entry["dollar_exposures"][r.factor.name] = r.dollar_exposure
            if r.capped:
                entry["capped"].append(r.factor.name)
        return {"as_of": as_of, "portfolio": portfolio.pk, "positions": list(positions.values())}


class FactorCorrelationView(APIView):
    @extend_schema(parameters=[s.CorrelationQuery], tags=["factors"], responses={200: dict})
    def get(self, request: Request) -> Response:
        query = s.CorrelationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        as_of = session_for(query.validated_data.get("as_of"))
        returns, left_out = rs.factor_model_returns(as_of, query.validated_data["lookback"])
        if len(returns) < 20:
            raise InsufficientHistory(
                f"Only {len(returns)} sessions of factor returns; 20 are needed"
                + (f" (left out: {'; '.join(left_out.values())})" if left_out else "")
                + ".",
                fields={"sessions": len(returns), "required": 20, "factors_left_out": left_out},
            )
        lam = settings.SIGMASIGHT_EWMA_LAMBDA
        corr = risk.ewma_correlation(risk.ewma_covariance(returns.to_numpy(), lam=lam))
        return Response(
            {
                "as_of": as_of,
                "lambda": lam,
                "factors": list(returns.columns),
                "matrix": corr.tolist(),
                "factors_left_out": left_out,
            }
        )


@extend_schema(tags=["risk"], responses={200: s.SCENARIO_ROWS})
class MarketScenariosView(ResultView):
    query_serializer = s.ScenarioQuery
    cache_view = "scenarios-market"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        ensure_factor_results(portfolio, as_of)
        moves = _moves(query.get("moves"), rs.MARKET_MOVES, 0.5)
        return rs.scenarios_for(portfolio, as_of, market_moves=moves, rate_moves=())["market"]


class RateScenariosView(MarketScenariosView):
    cache_view = "scenarios-rates"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        ensure_factor_results(portfolio, as_of)
        moves = _moves(query.get("moves"), rs.RATE_MOVES, 0.05)
        return rs.scenarios_for(portfolio, as_of, market_moves=(), rate_moves=moves)["rates"]


class ScenarioCalculateView(APIView):
    @extend_schema(request=s.ScenarioCalculateBody, responses={200: dict}, tags=["risk"])
    def post(self, request: Request) -> Response:
        body = s.ScenarioCalculateBody(data=request.data)
        body.is_valid(raise_exception=True)
        portfolio = portfolio_for(request, body.validated_data.get("portfolio"))
        as_of = session_for(body.validated_data.get("as_of"))
        with transaction.atomic():  # too little history: 422 and nothing written
            rs.factors_compute(as_of=as_of, portfolio_ids=[portfolio.pk])
            rs.ir_betas_compute(as_of=as_of, portfolio_ids=[portfolio.pk])
            ensure_factor_results(portfolio, as_of)
            rs.scenarios_compute(as_of=as_of, portfolio_ids=[portfolio.pk])
        results_changed([portfolio.pk])
        return Response({"as_of": as_of, **rs.scenarios_for(portfolio, as_of)})


@extend_schema(tags=["risk"], responses={200: dict})
class ScenarioAccuracyView(ResultView):
    query_serializer = s.AccuracyQuery
    cache_view = "scenarios-accuracy"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        ensure_factor_results(portfolio, as_of)
        return rm.scenario_accuracy(portfolio, as_of, query["days_back"])


@extend_schema(tags=["risk"], responses={200: dict})
class RiskMetricsView(ResultView):
    query_serializer = s.MetricsQuery
    cache_view = "risk-metrics"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        # Only the parametric and Monte Carlo measures need betas (null, with the reason,
        # when there are none); the rest rests on the book's own closes.
        ensure_factor_results(portfolio, as_of, required=False)
        metrics = rm.risk_metrics(
            portfolio, as_of, confidence=query["confidence"], horizon_days=query["horizon_days"]
        )
        symbols = Position.objects.filter(portfolio=portfolio, closed_at__isnull=True)
        metrics["data_quality"] = data_quality_sources(
            set(symbols.values_list("symbol", flat=True))
            | set(symbols.values_list("underlying_symbol", flat=True)),
            as_of,
        )
        return metrics


class FactorDiagnosticsView(APIView):
    """statsmodels OLS of one position on the factors over the same window as the batch: the
    full inference (t and p values, F test, Durbin-Watson, condition number) the batched solve
    does not produce."""

    @extend_schema(parameters=[s.CorrelationQuery], tags=["factors"], responses={200: dict})
    def get(self, request: Request, position_id: int) -> Response:
        import statsmodels.api as sm
        from statsmodels.stats.stattools import durbin_watson

        query = s.CorrelationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        position = generics.get_object_or_404(
            Position.objects.filter(portfolio__owner=request_user(request)), pk=position_id
        )
        as_of = session_for(query.validated_data.get("as_of"))
        window = settings.SIGMASIGHT_FACTOR_WINDOW
        X = rs.factor_returns(as_of, window)
        y = fx.simple_returns(closes_panel([position.underlying_symbol], as_of, window + 1))[
            position.underlying_symbol
        ]
        data = X.join(y.rename("y"), how="inner").dropna()
        needed = settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS
        if len(data) < needed:
            raise InsufficientHistory(
                f"Only {len(data)} sessions of returns for {position.underlying_symbol}; {needed} are needed.",
                fields={"sessions": len(data), "required": needed},
            )
        fit = sm.OLS(data["y"], sm.add_constant(data[list(X.columns)])).fit()
        return Response(
            {
                "position": position.pk,
                "symbol": position.symbol,
                "return_symbol": position.underlying_symbol,
                "as_of": as_of,
                "observations": int(fit.nobs),
                "params": fit.params.to_dict(),
                "std_errors": fit.bse.to_dict(),
                "t_values": fit.tvalues.to_dict(),
                "p_values": fit.pvalues.to_dict(),
                "r_squared": float(fit.rsquared),
                "adj_r_squared": float(fit.rsquared_adj),
                "f_statistic": float(fit.fvalue),
                "f_p_value": float(fit.f_pvalue),
                "durbin_watson": float(durbin_watson(fit.resid)),
                "condition_number": float(fit.condition_number),
                "residual_vol": float(fit.resid.std(ddof=len(X.columns) + 1)),
            }
        )
