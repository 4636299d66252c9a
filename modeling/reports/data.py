"""What a report says, read from the results the daily batch stores (nothing is recomputed
here, except the valuation of the book at the session's closes, which is how the summary API
reads it too).

A report is for one session, `as_of`: the latest session the portfolio has any stored result
for. Each section shows its own latest stored session on or before it (a job that failed today
leaves yesterday's rows, dated as such) and says so when nothing is stored, so a new portfolio
gets a report that explains what is missing instead of an error.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import NamedTuple

from django.db.models import Max, QuerySet

from analytics import selectors
from analytics import services as analytics
from analytics.calculations import aggregation
from analytics.models import (
    FactorDefinition,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PortfolioSnapshot,
    PositionFactorExposure,
    PositionGreeks,
    RiskMetricSnapshot,
)
from analytics.snapshots import exposure_series, portfolio_performance, snapshot_series
from marketdata import calendar
from modeling.reports import charts
from modeling.reports.document import Chart, Column, Section, Table
from portfolios.models import Portfolio
from stress.models import StressTestResult

GREEKS_CHARTED = 15  # underlyings in the Greeks chart, largest |dollar delta| first
GREEK_UNITS = (
    "Delta in shares (a stock's delta is its quantity), dollar delta = delta x underlying price, "
    "theta per calendar day, vega per vol point, rho per rate point."
)


class Figure(NamedTuple):
    """A row of a key/value table: its label, its value and the value's kind."""

    label: str
    value: object
    kind: str


class Measure(NamedTuple):
    """A row of a key/value table read from stored results: its label, the key (or attribute)
    its value is read by, and the value's kind."""

    label: str
    key: str
    kind: str


def latest_on_or_before(queryset: QuerySet, as_of: date) -> date | None:
    return queryset.filter(date__lte=as_of).aggregate(latest=Max("date"))["latest"]


def _dated_section(
    key: str, title: str, stored: QuerySet, as_of: date, empty: str
) -> tuple[Section, date | None]:
    """A section dated by its own latest stored rows on or before `as_of`; without any, the
    section says `empty` and the date is None."""
    day = latest_on_or_before(stored, as_of)
    section = Section(key, title, as_of=day)
    if day is None:
        section.empty = empty
    return section, day


def report_as_of(portfolio: Portfolio) -> date:
    """The latest session with any stored result for the portfolio, else the last session."""
    stored = [
        model.objects.filter(portfolio=portfolio).aggregate(latest=Max("date"))["latest"]
        for model in (
            PortfolioSnapshot,
            RiskMetricSnapshot,
            PortfolioFactorExposure,
            MarketRiskScenario,
            StressTestResult,
        )
    ]
    stored.append(
        PositionGreeks.objects.filter(position__portfolio=portfolio).aggregate(latest=Max("date"))[
            "latest"
        ]
    )
    found = [day for day in stored if day is not None]
    return max(found) if found else calendar.session_for(None)


def _float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# Sections ---------------------------------------------------------------------------------------
def summary_section(portfolio: Portfolio, as_of: date) -> tuple[Section, dict]:
    """The book valued at the session's closes with its stored Greeks (the summary API's body)."""
    summary = analytics.portfolio_summary(portfolio=portfolio, as_of=as_of)
    exposures = summary["exposures"]
    figures = [
        Figure("Equity", summary["equity"], "money"),
        Figure("Market value", summary["market_value"], "money"),
        Figure("Cash", summary["cash"], "money"),
        Figure("Gross exposure", exposures["gross"], "money"),
        Figure("Net exposure", exposures["net"], "money"),
        Figure("Long exposure", exposures["long"], "money"),
        Figure("Short exposure", exposures["short"], "money"),
        Figure("Delta-adjusted exposure", summary["delta_adjusted_exposure"], "money"),
        Figure("Daily P&L", summary["daily_pnl"], "money"),
        Figure("Unrealized P&L", summary["unrealized_pnl"], "money"),
        Figure("Long positions", exposures["long_count"], "integer"),
        Figure("Short positions", exposures["short_count"], "integer"),
    ]
    table = Table(
        key="summary",
        title="The book at the close",
        columns=[Column("metric", "Metric"), Column("value", portfolio.base_currency, "money")],
        rows=[[f.label, f.value] for f in figures],
        row_kinds=[f.kind for f in figures],
    )
    section = Section("summary", "Portfolio summary", as_of=summary["as_of"], tables=[table])
    if exposures.get("unvalued"):
        section.notes.append(
            f"{exposures['unvalued']} positions have no close on or before {summary['as_of']}: "
            "they are left out of the sums."
        )
    if summary["normalized_by"] == "gross":
        section.notes.append("Equity is not positive: returns and betas divide by gross exposure.")
    return section, summary["data_quality"]


def performance_section(portfolio: Portfolio, as_of: date) -> Section:
    section = Section("performance", "Equity and P&L over time")
    performance = portfolio_performance(portfolio=portfolio, end=as_of)
    series = performance["series"]
    if not series:
        section.empty = "No snapshots are stored yet: the daily batch writes one per session."
        return section
    dates = [point["date"] for point in series]
    section.notes.append(
        f"{len(series)} sessions from {dates[0]} to {dates[-1]}; the CSV and the workbook list "
        "every session."
    )
    if len(series) > 1:
        section.charts.append(
            Chart(
                "Equity and daily P&L",
                partial(
                    charts.equity_and_pnl,
                    dates,
                    [float(p["equity"]) for p in series],
                    [float(p["daily_pnl"]) for p in series],
                    portfolio.base_currency,
                ),
            )
        )
    statistics = [
        Measure("Total return", "total_return", "percent"),
        Measure("Annualized return", "annualized_return", "percent"),
        Measure("Volatility (annualized)", "volatility", "percent"),
        Measure("Sharpe ratio", "sharpe", "number"),
        Measure("Sortino ratio", "sortino", "number"),
        Measure("Maximum drawdown", "max_drawdown", "percent"),
    ]
    section.tables.append(
        Table(
            key="performance_statistics",
            title="Return statistics",
            columns=[Column("metric", "Statistic"), Column("value", "Value", "number")],
            rows=[[m.label, performance[m.key]] for m in statistics],
            row_kinds=[m.kind for m in statistics],
        )
    )
    section.tables.append(
        Table(
            key="performance_series",
            title="Equity and P&L per session",
            columns=[
                Column("date", "Date", "date"),
                Column("equity", "Equity", "money"),
                Column("daily_pnl", "Daily P&L", "money"),
                Column("daily_return", "Daily return", "percent"),
                Column("cumulative_return", "Cumulative return", "percent"),
            ],
            rows=[
                [p["date"], p["equity"], p["daily_pnl"], p["daily_return"], p["cumulative_return"]]
                for p in series
            ],
            printed=False,
        )
    )
    return section


EXPOSURE_SERIES = {  # key -> label
    "gross": "Gross",
    "net": "Net",
    "long": "Long",
    "short": "Short",
    "delta_adjusted": "Delta-adjusted",
}


def exposures_section(portfolio: Portfolio, as_of: date) -> Section:
    section = Section("exposures", "Exposures over time")
    rows = exposure_series(portfolio=portfolio, end=as_of)
    if not rows:
        section.empty = "No snapshots are stored yet: the daily batch writes one per session."
        return section
    dates = [row["date"] for row in rows]
    section.notes.append(
        f"{len(rows)} sessions from {dates[0]} to {dates[-1]}; the CSV and the workbook list "
        "every session."
    )
    if len(rows) > 1:
        series = {
            label: [float(row[key]) for row in rows] for key, label in EXPOSURE_SERIES.items()
        }
        title = f"Exposures ({portfolio.base_currency})"
        section.charts.append(Chart(title, partial(charts.lines, dates, series, title)))
    section.tables.append(
        Table(
            key="exposures_series",
            title="Exposures per session",
            columns=[Column("date", "Date", "date")]
            + [Column(key, label, "money") for key, label in EXPOSURE_SERIES.items()],
            rows=[[row["date"], *(row[key] for key in EXPOSURE_SERIES)] for row in rows],
            printed=False,
        )
    )
    return section


def greeks_section(portfolio: Portfolio, as_of: date) -> Section:
    """Greeks summed per underlying from the positions' stored Greeks for the session."""
    section = Section("greeks", "Greeks by underlying", as_of=as_of)
    frame, quality = selectors.book_frame([portfolio.pk], as_of)
    if frame.empty:
        section.empty = "The portfolio has no open positions."
        return section
    groups = aggregation.by_key(frame, frame["underlying_symbol"])
    counts = frame.groupby("underlying_symbol").size()
    order = sorted(groups, key=lambda k: -abs(groups[k]["greeks"]["dollar_delta"]))
    greek_columns = [
        Column("delta", "Delta", "number"),
        Column("dollar_delta", "Dollar delta", "money"),
        Column("gamma", "Gamma", "number"),
        Column("theta", "Theta", "number"),
        Column("vega", "Vega", "number"),
        Column("rho", "Rho", "number"),
    ]

    def row(key: str, count: int, group: aggregation.GroupAggregate) -> list[object]:
        return [
            key,
            count,
            group["exposures"]["net"],
            *(group["greeks"][column.key] for column in greek_columns),
        ]

    total: aggregation.GroupAggregate = {
        "exposures": aggregation.exposures(frame),
        "greeks": aggregation.greeks(frame),
    }
    section.tables.append(
        Table(
            key="greeks_by_underlying",
            title="Greeks by underlying",
            columns=[
                Column("underlying", "Underlying"),
                Column("positions", "Positions", "integer"),
                Column("net_exposure", "Net exposure", "money"),
                *greek_columns,
            ],
            rows=[row(k, int(counts[k]), groups[k]) for k in order]
            + [row("Total", len(frame), total)],
        )
    )
    charted = order[:GREEKS_CHARTED]
    panels = {
        "Dollar delta": [groups[k]["greeks"]["dollar_delta"] for k in charted],
        "Gamma": [groups[k]["greeks"]["gamma"] for k in charted],
        "Theta (per day)": [groups[k]["greeks"]["theta"] for k in charted],
        "Vega (per vol point)": [groups[k]["greeks"]["vega"] for k in charted],
    }
    if any(abs(v) > 0 for values in panels.values() for v in values):  # NaN compares False
        section.charts.append(
            Chart("Greeks by underlying", partial(charts.greeks_by_underlying, charted, panels))
        )
    section.notes.append(GREEK_UNITS)
    if len(order) > GREEKS_CHARTED:
        section.notes.append(
            f"The chart shows the {GREEKS_CHARTED} underlyings with the largest dollar delta."
        )
    if quality["missing_greeks"]:
        section.notes.append(
            f"{quality['missing_greeks']} option positions have no stored Greeks for {as_of}: "
            "they are left out of the sums."
        )
    if quality["fallbacks"]:
        section.notes.append(
            f"{quality['fallbacks']} option positions use a default or mock volatility."
        )
    return section


RISK_ROWS = [
    Measure("VaR (historical)", "var_historical", "money"),
    Measure("VaR (parametric)", "var_parametric", "money"),
    Measure("VaR (Monte Carlo)", "var_monte_carlo", "money"),
    Measure("Expected shortfall", "expected_shortfall", "money"),
    Measure("Volatility (annualized)", "volatility", "percent"),
    Measure("Sharpe ratio", "sharpe", "number"),
    Measure("Sortino ratio", "sortino", "number"),
    Measure("Maximum drawdown", "max_drawdown", "percent"),
    Measure("Beta to SPY", "beta", "number"),
    Measure("Observations", "observations", "integer"),
]


def risk_metrics_section(portfolio: Portfolio, as_of: date) -> Section:
    stored = RiskMetricSnapshot.objects.filter(portfolio=portfolio)
    section, day = _dated_section(
        "risk_metrics",
        "Risk metrics",
        stored,
        as_of,
        "No risk metrics are stored yet: the market-risk job writes them.",
    )
    if day is None:
        return section
    metrics = list(stored.filter(date=day).order_by("confidence", "horizon_days"))
    columns = [Column("metric", "Metric")] + [
        Column(f"{m.confidence:g}_{m.horizon_days}d", f"{m.confidence:.1%} / {m.horizon_days}d")
        for m in metrics
    ]
    backtest = [
        Measure("VaR backtest exceptions", "exceptions", "integer"),
        Measure("VaR backtest sessions", "observations", "integer"),
        Measure("Kupiec p-value", "kupiec_p_value", "number"),
    ]
    section.tables.append(
        Table(
            key="risk_metrics",
            title="Value at risk and return statistics",
            columns=columns,
            rows=[[r.label, *(getattr(m, r.key) for m in metrics)] for r in RISK_ROWS]
            + [[r.label, *(m.backtest.get(r.key) for m in metrics)] for r in backtest],
            row_kinds=[r.kind for r in RISK_ROWS] + [r.kind for r in backtest],
        )
    )
    section.notes.append(
        "VaR and expected shortfall are losses in the portfolio's currency over the horizon at "
        "the confidence of each column; the backtest counts sessions whose loss exceeded VaR."
    )
    return section


def scenarios_section(portfolio: Portfolio, as_of: date) -> Section:
    stored = MarketRiskScenario.objects.filter(portfolio=portfolio)
    section, day = _dated_section(
        "scenarios",
        "Market and rate scenarios",
        stored,
        as_of,
        "No scenarios are stored yet: the market-risk job writes them.",
    )
    if day is None:
        return section

    def label(row: MarketRiskScenario) -> str:
        if row.kind == MarketRiskScenario.Kind.RATES:
            return f"Rates {row.move * 10_000:+.0f}bp"
        return f"Market {row.move:+.1%}"

    rows = list(stored.filter(date=day).order_by("kind", "move"))
    section.tables.append(
        Table(
            key="scenarios",
            title="Scenario P&L",
            columns=[
                Column("scenario", "Scenario"),
                Column("move", "Move", "percent"),
                Column("predicted_pnl", "Predicted P&L", "money"),
                Column("delta_only_pnl", "Delta-only P&L", "money"),
                Column("predicted_return", "Predicted return", "percent"),
            ],
            rows=[
                [label(r), r.move, r.predicted_pnl, r.delta_only_pnl, r.predicted_return]
                for r in rows
            ],
        )
    )
    section.notes.append("Options are revalued in full; the delta-only column is the linear P&L.")
    return section


def factor_betas_section(portfolio: Portfolio, as_of: date) -> Section:
    stored = PortfolioFactorExposure.objects.filter(portfolio=portfolio)
    section, day = _dated_section(
        "factor_betas",
        "Factor betas",
        stored,
        as_of,
        "No factor betas are stored yet: the factor job writes them.",
    )
    if day is None:
        return section
    rows = list(
        stored.filter(date=day).select_related("factor").order_by("factor__display_order", "id")
    )
    names = [r.factor.name for r in rows]
    section.charts.append(
        Chart(
            "Portfolio factor betas",
            partial(charts.bars, names, [r.beta for r in rows], "Portfolio beta", money=False),
        )
    )
    section.tables.append(
        Table(
            key="factor_betas",
            title="Portfolio factor betas",
            columns=[
                Column("factor", "Factor"),
                Column("etf_proxy", "Proxy"),
                Column("factor_type", "Type"),
                Column("beta", "Beta", "number"),
                Column("dollar_exposure", "Dollar exposure", "money"),
                Column("positions_with_beta", "Positions with a beta", "integer"),
            ],
            rows=[
                [
                    r.factor.name,
                    r.factor.etf_proxy,
                    r.factor.factor_type,
                    r.beta,
                    r.dollar_exposure,
                    r.positions_with_beta,
                ]
                for r in rows
            ],
        )
    )
    if any(r.normalized_by == "gross" for r in rows):
        section.notes.append("Equity is not positive: betas divide by gross exposure.")
    section.notes.append(
        "Style factors enter as their return residual to SPY; dollar exposure = exposure x beta "
        "(options delta-adjusted); portfolio beta = dollar exposure / equity."
    )
    return section


def factor_history_section(portfolio: Portfolio, as_of: date) -> Section:
    section = Section("factor_history", "Factor betas over time")
    snapshots = [
        (day, betas)
        for day, betas in snapshot_series(portfolio, end=as_of).values_list("date", "factor_betas")
        if betas
    ]
    if not snapshots:
        section.empty = "No snapshot carries factor betas yet."
        return section
    names = list(
        FactorDefinition.objects.filter(name__in={n for _, b in snapshots for n in b})
        .order_by("display_order", "id")
        .values_list("name", "factor_type")
    )
    dates = [day for day, _ in snapshots]
    if len(snapshots) > 1:
        style = {
            name: [_float(b.get(name)) for _, b in snapshots]
            for name, kind in names
            if kind == FactorDefinition.FactorType.STYLE
        }
        section.charts.append(
            Chart(
                "Style factor betas over time",
                partial(charts.lines, dates, style, "Style factor betas", money=False),
            )
        )
    else:
        section.notes.append(f"Only one session ({dates[0]}) has stored betas so far.")
    section.tables.append(
        Table(
            key="factor_history",
            title="Factor betas per session",
            columns=[Column("date", "Date", "date")]
            + [Column(name, name, "number") for name, _ in names],
            rows=[[day, *(b.get(name) for name, _ in names)] for day, b in snapshots],
            printed=False,
        )
    )
    return section


def position_betas_section(portfolio: Portfolio, as_of: date) -> Section:
    stored = PositionFactorExposure.objects.filter(position__portfolio=portfolio)
    section, day = _dated_section(
        "position_betas",
        "Position factor betas",
        stored,
        as_of,
        "No position betas are stored yet: the factor job writes them.",
    )
    if day is None:
        return section
    rows = list(
        stored.filter(date=day)
        .order_by("position_id", "factor__display_order", "factor_id")
        .values_list(
            "position_id",
            "position__symbol",
            "factor__name",
            "factor__factor_type",
            "beta",
            "dollar_exposure",
            "r_squared",
            "observations",
            "capped",
        )
    )
    factors: dict[str, str] = {}
    positions: dict[int, dict] = {}
    for pid, symbol, factor, kind, beta, dollar, r2, observations, capped in rows:
        factors.setdefault(factor, kind)
        entry = positions.setdefault(
            pid, {"symbol": symbol, "r2": r2, "obs": observations, "beta": {}, "dollar": {}}
        )
        entry["beta"][factor], entry["dollar"][factor] = beta, dollar
        entry.setdefault("capped", []).extend([factor] if capped else [])
    style = [name for name, kind in factors.items() if kind == FactorDefinition.FactorType.STYLE]
    head = [Column("position", "Position", "integer"), Column("symbol", "Symbol")]
    section.tables.append(
        Table(
            key="position_betas",
            title="Style factor betas per position",
            columns=[
                *head,
                Column("r_squared", "R squared", "number"),
                *(Column(name, name, "number") for name in style),
            ],
            rows=[
                [pid, p["symbol"], p["r2"], *(p["beta"].get(n) for n in style)]
                for pid, p in positions.items()
            ],
        )
    )
    section.tables.append(
        Table(
            key="position_betas_all",
            title="Factor betas per position",
            columns=[
                *head,
                Column("observations", "Observations", "integer"),
                *(Column(name, name, "number") for name in factors),
            ],
            rows=[
                [pid, p["symbol"], p["obs"], *(p["beta"].get(n) for n in factors)]
                for pid, p in positions.items()
            ],
            printed=False,
        )
    )
    section.tables.append(
        Table(
            key="position_dollar_exposures",
            title="Dollar factor exposure per position",
            columns=[*head, *(Column(name, name, "money") for name in factors)],
            rows=[
                [pid, p["symbol"], *(p["dollar"].get(n) for n in factors)]
                for pid, p in positions.items()
            ],
            printed=False,
        )
    )
    capped_count = sum(1 for p in positions.values() if p["capped"])
    section.notes.append(
        "The CSV and the workbook hold every factor's beta and dollar exposure per position."
    )
    if capped_count:
        section.notes.append(
            f"{capped_count} positions have a beta capped at the configured limit."
        )
    return section
