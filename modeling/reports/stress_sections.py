"""The stress sections of a report: the stored results of the latest stress run on or before the
report's session, worst first, and their P&L by factor and by position."""

from __future__ import annotations

from datetime import date
from functools import partial

from modeling.reports import charts
from modeling.reports.data import latest_on_or_before
from modeling.reports.document import Chart, Column, Section, Table
from portfolios.models import Portfolio
from stress.models import StressTestResult


def stress_rows(portfolio: Portfolio, as_of: date) -> tuple[date | None, list[StressTestResult]]:
    stored = StressTestResult.objects.filter(portfolio=portfolio)
    day = latest_on_or_before(stored, as_of)
    if day is None:
        return None, []
    rows = stored.filter(date=day).select_related("scenario")
    return day, list(rows.order_by("total_pnl", "scenario__name", "scenario_id"))


def stress_section(day: date | None, results: list[StressTestResult]) -> Section:
    section = Section("stress", "Stress test results", as_of=day)
    if not results:
        section.empty = "No stress results are stored yet: the stress job writes them."
        return section
    names = [r.scenario.name for r in results]
    section.charts.append(
        Chart(
            "Stress P&L by scenario",
            partial(charts.bars, names, [r.total_pnl for r in results], "Total P&L"),
        )
    )
    section.tables.append(
        Table(
            key="stress_results",
            title="Stress P&L by scenario (worst first)",
            columns=[
                Column("scenario", "Scenario"),
                Column("category", "Category"),
                Column("direct_pnl", "Direct P&L", "money"),
                Column("total_pnl", "Total P&L", "money"),
                Column("pnl_pct", "P&L %", "percent"),
            ],
            rows=[
                [
                    r.scenario.name,
                    r.scenario.get_category_display(),
                    r.direct_pnl,
                    r.total_pnl,
                    r.pnl_pct,
                ]
                for r in results
            ],
        )
    )
    section.notes.append(
        "Direct P&L moves only the shocked factors; total P&L adds the other factors' moves "
        "implied by the EWMA correlation. Options are revalued in full. P&L % is of equity."
    )
    return section


def stress_detail_sections(day: date | None, results: list[StressTestResult]) -> list[Section]:
    """The worst scenario's factor and position attribution, and every scenario by factor."""
    if not results:
        return []
    worst = results[0]
    by_factor = worst.breakdown.get("by_factor", {})
    moves = worst.breakdown.get("factor_moves", {})
    factors = list(by_factor)
    section = Section("stress_worst", f"Worst scenario: {worst.scenario.name}", as_of=day)
    if worst.scenario.description:
        section.notes.append(worst.scenario.description)
    section.charts.append(
        Chart(
            "P&L by factor in the worst scenario",
            partial(charts.bars, factors, [by_factor[f] for f in factors], "P&L by factor"),
        )
    )
    section.tables.append(
        Table(
            key="stress_worst_factors",
            title="P&L by factor",
            columns=[
                Column("factor", "Factor"),
                Column("move", "Factor move", "percent"),
                Column("pnl", "P&L", "money"),
            ],
            rows=[[f, moves.get(f), by_factor[f]] for f in factors],
        )
    )
    section.tables.append(
        Table(
            key="stress_worst_positions",
            title="Worst positions",
            columns=[
                Column("position", "Position", "integer"),
                Column("symbol", "Symbol"),
                Column("pnl", "P&L", "money"),
            ],
            rows=[
                [p["position"], p["symbol"], p["pnl"]]
                for p in worst.breakdown.get("worst_positions", [])
            ],
        )
    )
    matrix = Section("stress_by_factor", "Stress P&L by factor", as_of=day)
    matrix.tables.append(
        Table(
            key="stress_by_factor",
            title="Stress P&L by scenario and factor",
            columns=[Column("scenario", "Scenario")] + [Column(f, f, "money") for f in factors],
            rows=[
                [r.scenario.name, *(r.breakdown.get("by_factor", {}).get(f) for f in factors)]
                for r in results
            ],
            printed=False,
        )
    )
    return [section, matrix]
