"""Where the risk comes from: risk/contributions/ (analytics.contributions)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema

from analytics import contribution_selectors as contributions
from analytics import risk_metrics as rm
from analytics.api import contribution_serializers as s
from analytics.api.risk_views import ensure_factor_results
from portfolios.api.results import ResultView
from portfolios.models import Portfolio
from sigmasight.api.caching import results_changed


@extend_schema(responses={200: s.ContributionsSerializer}, tags=["risk"])
class RiskContributionsView(ResultView):
    """Each position's (or group's) Euler component of the book's volatility, VaR or expected
    shortfall, by method, as the daily market_risk job stores them with the risk metrics: the
    components sum to `total`, which for the VaRs and the historical ES is the stored metric.
    Historical: the positions' own closes (options too), one-day figures x sqrt(horizon).
    Monte Carlo: the stored VaR's seeded draws, options fully revalued, the residual noise
    shared by specific variance. Parametric: the factor model, options by their delta, with
    `systematic` and `specific` and a `by=factor` view. The latest stored session on or before
    `as_of`; when none is, the first read computes and stores the session as the job does (a
    book with too little history of its own: every number null, the reason in `unavailable`)."""

    query_serializer = s.ContributionsQuery
    cache_view = "risk-contributions"

    def compute(self, *, portfolio: Portfolio, as_of: date | None, query: dict) -> Any:
        assert as_of is not None
        asked = {k: query[k] for k in ("measure", "method", "by", "confidence")}
        report = contributions.risk_contributions(portfolio=portfolio, as_of=as_of, **asked)
        if report is None:
            with transaction.atomic():
                # Only the parametric and Monte Carlo measures need betas (null, with the
                # reason, when there are none); the rest rests on the book's own closes.
                ensure_factor_results(portfolio, as_of, required=False)
                done = rm.risk_metrics_compute(as_of=as_of, portfolio_ids=[portfolio.pk])
            if done["rows"]:
                results_changed([portfolio.pk])  # its stored risk metrics, cached before
            report = contributions.risk_contributions(
                portfolio=portfolio, as_of=as_of, **asked
            ) or contributions.unmeasured(
                portfolio=portfolio,
                as_of=as_of,
                horizon_days=rm.HORIZON_DAYS,
                reason=done["skipped"].get(portfolio.pk, "not measured"),
                **asked,
            )
        return s.ContributionsSerializer(report).data
