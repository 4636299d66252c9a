"""Factor model, scenario and risk-metric endpoints (API.md "Risk and factors")."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import risk_metrics as rm
from analytics import risk_services as rs
from analytics.api.views import portfolio_for
from analytics.calculations import risk
from analytics.models import FactorDefinition, PortfolioFactorExposure, PositionFactorExposure
from analytics.provenance import data_quality_sources
from analytics.services import session_for
from portfolios.models import Portfolio, Position
from sigmasight.api.caching import cached_response, results_changed
from sigmasight.api.fields import id_field
from sigmasight.api.query import QuerySerializer
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


class RiskQuery(QuerySerializer):
    portfolio = id_field(required=False, help_text="default: your first portfolio")
    as_of = serializers.DateField(required=False)


class ScenarioQuery(RiskQuery):
    moves = serializers.CharField(required=False, help_text="comma-separated decimal moves")


class MetricsQuery(RiskQuery):
    confidence = serializers.FloatField(default=0.95, min_value=0.5, max_value=0.999)
    horizon_days = serializers.IntegerField(default=1, min_value=1, max_value=60)


class ExposureQuery(RiskQuery):
    level = serializers.ChoiceField(choices=["portfolio", "position"], default="portfolio")


class AccuracyQuery(RiskQuery):
    days_back = serializers.IntegerField(default=90, min_value=10, max_value=500)


class CorrelationQuery(QuerySerializer):
    lookback = serializers.IntegerField(default=252, min_value=20, max_value=1000)
    as_of = serializers.DateField(required=False)


def _context(
    request: Request, query_class: type[serializers.Serializer]
) -> tuple[Portfolio, date, dict]:
    query = query_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    portfolio = portfolio_for(request, query.validated_data.get("portfolio"))
    as_of = session_for(query.validated_data.get("as_of"))
    return portfolio, as_of, query.validated_data


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
    have = rs.closes_panel(symbols, as_of, window + 1).pct_change(fill_method=None).notna().sum()
    series = {s: int(have.get(s, 0)) for s in symbols}
    named = ", ".join(f"{s} has {n}" for s, n in list(series.items())[:5])
    if X.empty:
        why = "no factor has enough history (" + "; ".join(left_out.values()) + ")"
    else:
        why = f"{named} daily returns in the {window} sessions to {as_of.isoformat()}"
    return InsufficientHistory(
        f"No position has the {needed} sessions of returns a factor beta needs: {why}."[:600],
        fields={"required": needed, "series": series, "factors_left_out": left_out},
    )


FACTOR_ROW = inline_serializer(
    "PortfolioFactorRow",
    {
        "factor": serializers.CharField(), "etf_proxy": serializers.CharField(),
        "beta": serializers.FloatField(), "dollar_exposure": serializers.FloatField(),
        "r_squared": serializers.FloatField(allow_null=True), "observations": serializers.IntegerField(),
        "capped": serializers.IntegerField(help_text="positions whose beta to this factor was capped"),
    },
)  # fmt: skip


class RiskFactorsView(APIView):
    @extend_schema(
        parameters=[RiskQuery], tags=["risk"],
        responses={200: inline_serializer("RiskFactors", {
            "as_of": serializers.DateField(), "portfolio": serializers.IntegerField(),
            "normalized_by": serializers.CharField(), "factors": FACTOR_ROW.__class__(many=True),
        })},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        portfolio, as_of, _ = _context(request, RiskQuery)

        def compute() -> Response:
            ensure_factor_results(portfolio, as_of)
            rows = portfolio_factor_rows(portfolio, as_of)
            symbols = Position.objects.filter(portfolio=portfolio, closed_at__isnull=True)
            rows["data_quality"] = data_quality_sources(
                set(symbols.values_list("underlying_symbol", flat=True)), as_of, rates=False
            )
            return Response(rows)

        return cached_response("risk-factors", portfolio.pk, {"as_of": as_of}, compute)


def portfolio_factor_rows(portfolio: Portfolio, as_of: date) -> dict:
    stored = list(
        PortfolioFactorExposure.objects.filter(portfolio=portfolio, date=as_of)
        .select_related("factor").order_by("factor__display_order")
    )  # fmt: skip
    positions = PositionFactorExposure.objects.filter(position__portfolio=portfolio, date=as_of)
    stats: dict[int, dict] = {}
    for factor_id, r2, weight, observations, capped in positions.values_list(
        "factor_id", "r_squared", "dollar_exposure", "observations", "capped"
    ):
        s = stats.setdefault(factor_id, {"w": 0.0, "wr2": 0.0, "obs": observations, "capped": 0})
        s["w"] += abs(weight)
        s["wr2"] += abs(weight) * r2
        s["obs"] = min(s["obs"], observations)
        s["capped"] += int(capped)
    rows = []
    for row in stored:
        s = stats.get(row.factor_id, {"w": 0.0, "wr2": 0.0, "obs": 0, "capped": 0})
        rows.append({
            "factor": row.factor.name, "etf_proxy": row.factor.etf_proxy, "beta": row.beta,
            "dollar_exposure": row.dollar_exposure,
            "r_squared": s["wr2"] / s["w"] if s["w"] else None, "observations": s["obs"], "capped": s["capped"],
        })  # fmt: skip
    normalized = stored[0].normalized_by if stored else "equity"
    return {"as_of": as_of, "portfolio": portfolio.pk, "normalized_by": normalized, "factors": rows}


class FactorDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FactorDefinition
        fields = [
            "id",
            "name",
            "etf_proxy",
            "factor_type",
            "display_order",
            "is_active",
            "description",
        ]


class FactorDefinitionsView(generics.ListAPIView):
    """Shared reference data: every user sees the same definitions."""

    queryset = FactorDefinition.objects.order_by("display_order", "id")
    serializer_class = FactorDefinitionSerializer
    filterset_fields = ["factor_type", "is_active"]
    ordering_fields = ["display_order", "name"]


class FactorExposuresView(APIView):
    @extend_schema(parameters=[ExposureQuery], tags=["factors"], responses={200: dict})
    def get(self, request: Request) -> Response:
        portfolio, as_of, query = _context(request, ExposureQuery)
        return cached_response(
            "factor-exposures", portfolio.pk, {**query, "as_of": as_of},
            lambda: self._exposures(portfolio, as_of, query["level"]),
        )  # fmt: skip

    @staticmethod
    def _exposures(portfolio: Portfolio, as_of: date, level: str) -> Response:
        ensure_factor_results(portfolio, as_of)
        if level == "portfolio":
            return Response(portfolio_factor_rows(portfolio, as_of))
        rows = (
            PositionFactorExposure.objects.filter(position__portfolio=portfolio, date=as_of)
            .select_related("factor", "position").order_by("position_id", "factor__display_order")
        )  # fmt: skip
        positions: dict[int, dict] = {}
        for r in rows:
            entry = positions.setdefault(r.position_id, {
                "position": r.position_id, "symbol": r.position.symbol, "r_squared": r.r_squared,
                "observations": r.observations, "betas": {}, "dollar_exposures": {}, "capped": [],
            })  # fmt: skip
            entry["betas"][r.factor.name] = r.beta
            entry["dollar_exposures"][r.factor.name] = r.dollar_exposure
            if r.capped:
                entry["capped"].append(r.factor.name)
        return Response(
            {"as_of": as_of, "portfolio": portfolio.pk, "positions": list(positions.values())}
        )


class FactorCorrelationView(APIView):
    @extend_schema(parameters=[CorrelationQuery], tags=["factors"], responses={200: dict})
    def get(self, request: Request) -> Response:
        query = CorrelationQuery(data=request.query_params)
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


SCENARIO_ROWS = inline_serializer(
    "RiskScenarioRow",
    {
        "scenario": serializers.CharField(),
        "move": serializers.FloatField(),
        "predicted_pnl": serializers.FloatField(),
        "delta_only_pnl": serializers.FloatField(allow_null=True),
        "predicted_return": serializers.FloatField(),
    },
    many=True,
)


class MarketScenariosView(APIView):
    kind = "market"

    @extend_schema(parameters=[ScenarioQuery], tags=["risk"], responses={200: SCENARIO_ROWS})
    def get(self, request: Request) -> Response:
        portfolio, as_of, query = _context(request, ScenarioQuery)
        return cached_response(
            f"scenarios-{self.kind}", portfolio.pk, {**query, "as_of": as_of},
            lambda: self._scenarios(portfolio, as_of, query),
        )  # fmt: skip

    def _scenarios(self, portfolio: Portfolio, as_of: date, query: dict) -> Response:
        ensure_factor_results(portfolio, as_of)
        if self.kind == "market":
            moves = _moves(query.get("moves"), rs.MARKET_MOVES, 0.5)
            return Response(
                rs.scenarios_for(portfolio, as_of, market_moves=moves, rate_moves=())["market"]
            )
        moves = _moves(query.get("moves"), rs.RATE_MOVES, 0.05)
        return Response(
            rs.scenarios_for(portfolio, as_of, market_moves=(), rate_moves=moves)["rates"]
        )


class RateScenariosView(MarketScenariosView):
    kind = "rates"


class ScenarioCalculateBody(serializers.Serializer):
    portfolio = id_field()
    as_of = serializers.DateField(required=False)


class ScenarioCalculateView(APIView):
    @extend_schema(request=ScenarioCalculateBody, responses={200: dict}, tags=["risk"])
    def post(self, request: Request) -> Response:
        body = ScenarioCalculateBody(data=request.data)
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


class ScenarioAccuracyView(APIView):
    @extend_schema(parameters=[AccuracyQuery], tags=["risk"], responses={200: dict})
    def get(self, request: Request) -> Response:
        portfolio, as_of, query = _context(request, AccuracyQuery)

        def compute() -> Response:
            ensure_factor_results(portfolio, as_of)
            return Response(rm.scenario_accuracy(portfolio, as_of, query["days_back"]))

        return cached_response(
            "scenarios-accuracy", portfolio.pk, {**query, "as_of": as_of}, compute
        )


class RiskMetricsView(APIView):
    @extend_schema(parameters=[MetricsQuery], tags=["risk"], responses={200: dict})
    def get(self, request: Request) -> Response:
        portfolio, as_of, query = _context(request, MetricsQuery)

        def compute() -> Response:
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
            return Response(metrics)

        return cached_response("risk-metrics", portfolio.pk, {**query, "as_of": as_of}, compute)


class FactorDiagnosticsView(APIView):
    """statsmodels OLS of one position on the factors over the same window as the batch: the
    full inference (t and p values, F test, Durbin-Watson, condition number) the batched solve
    does not produce."""

    @extend_schema(parameters=[CorrelationQuery], tags=["factors"], responses={200: dict})
    def get(self, request: Request, position_id: int) -> Response:
        import statsmodels.api as sm
        from statsmodels.stats.stattools import durbin_watson

        from analytics.calculations import factors as fx

        query = CorrelationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        position = generics.get_object_or_404(
            Position.objects.filter(portfolio__owner=request.user), pk=position_id
        )
        as_of = session_for(query.validated_data.get("as_of"))
        window = settings.SIGMASIGHT_FACTOR_WINDOW
        X = rs.factor_returns(as_of, window)
        y = fx.simple_returns(rs.closes_panel([position.underlying_symbol], as_of, window + 1))[
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
        return Response({
            "position": position.pk, "symbol": position.symbol, "return_symbol": position.underlying_symbol,
            "as_of": as_of, "observations": int(fit.nobs),
            "params": fit.params.to_dict(), "std_errors": fit.bse.to_dict(), "t_values": fit.tvalues.to_dict(),
            "p_values": fit.pvalues.to_dict(), "r_squared": float(fit.rsquared), "adj_r_squared": float(fit.rsquared_adj),
            "f_statistic": float(fit.fvalue), "f_p_value": float(fit.f_pvalue),
            "durbin_watson": float(durbin_watson(fit.resid)), "condition_number": float(fit.condition_number),
            "residual_vol": float(fit.resid.std(ddof=len(X.columns) + 1)),
        })  # fmt: skip
