"""A report's document: the summary and the sections its kind lists (`BUILDERS`), for the
portfolio's latest stored session (`data.report_as_of`)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone

from modeling.reports.attribution_sections import attribution_detail_sections, attribution_section
from modeling.reports.data import (
    exposures_section,
    factor_betas_section,
    factor_history_section,
    greeks_section,
    performance_section,
    position_betas_section,
    report_as_of,
    risk_metrics_section,
    scenarios_section,
    summary_section,
)
from modeling.reports.document import Document, Section
from modeling.reports.option_sections import options_section
from modeling.reports.risk_sources import (
    concentration_section,
    contributions_section,
    liquidity_section,
)
from modeling.reports.stress_sections import stress_detail_sections, stress_rows, stress_section
from portfolios.models import Portfolio

TITLES = {
    "risk_summary": "Risk summary",
    "stress": "Stress test report",
    "factor": "Factor exposure report",
    "attribution": "P&L attribution report",
}


def _risk_summary(portfolio: Portfolio, as_of: date) -> list[Section]:
    return [
        performance_section(portfolio, as_of),
        exposures_section(portfolio, as_of),
        greeks_section(portfolio, as_of),
        options_section(portfolio, as_of),
        risk_metrics_section(portfolio, as_of),
        contributions_section(portfolio, as_of),
        scenarios_section(portfolio, as_of),
        factor_betas_section(portfolio, as_of),
        attribution_section(portfolio, as_of),
        liquidity_section(portfolio, as_of),
        concentration_section(portfolio, as_of),
        stress_section(*stress_rows(portfolio, as_of)),
    ]


def _stress(portfolio: Portfolio, as_of: date) -> list[Section]:
    day, results = stress_rows(portfolio, as_of)
    return [stress_section(day, results), *stress_detail_sections(day, results)]


def _factor(portfolio: Portfolio, as_of: date) -> list[Section]:
    return [
        factor_betas_section(portfolio, as_of),
        factor_history_section(portfolio, as_of),
        position_betas_section(portfolio, as_of),
    ]


def _attribution(portfolio: Portfolio, as_of: date) -> list[Section]:
    return [attribution_section(portfolio, as_of), *attribution_detail_sections(portfolio, as_of)]


BUILDERS = {
    "risk_summary": _risk_summary,
    "stress": _stress,
    "factor": _factor,
    "attribution": _attribution,
}


def document_build(*, kind: str, portfolio: Portfolio, now: datetime | None = None) -> Document:
    """The report of `kind` for the portfolio's latest stored session."""
    as_of = report_as_of(portfolio)
    summary, quality = summary_section(portfolio, as_of)
    return Document(
        kind=kind,
        title=TITLES[kind],
        portfolio_id=portfolio.pk,
        portfolio_name=portfolio.name,
        currency=portfolio.base_currency,
        as_of=as_of,
        generated_at=now or timezone.now(),
        sections=[summary, *BUILDERS[kind](portfolio, as_of)],
        data_quality=quality,
    )
