"""Where the P&L came from: the attribution sections of the risk summary and the `attribution`
report, from the stored daily attribution (`analytics.attribution.attribution_series`, the
same reader as GET /risk/attribution/): each day's P&L split into its factors' parts and the
specific rest, its options' Greeks explain, and by underlying and position."""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np

from analytics.attribution import attribution_series
from modeling.reports import charts
from modeling.reports.document import Chart, Column, Section, Table
from portfolios.models import Portfolio

SPECIFIC = "specific"
CHARTED_FACTORS = 6  # factors drawn by name (largest cumulative P&L); the others summed


def _totals_table(key: str, title: str, label: str, totals: dict[str, float]) -> Table:
    order = sorted(totals, key=lambda k: -abs(totals[k]))
    return Table(
        key=key,
        title=title,
        columns=[Column("key", label), Column("pnl", "P&L", "money")],
        rows=[[k, totals[k]] for k in order] + [["Total", sum(totals.values())]],
    )


def _daily_table(key: str, title: str, series: list[dict], keys: list[str]) -> Table:
    return Table(
        key=key,
        title=title,
        columns=[
            Column("date", "Date", "date"),
            Column("total", "Total P&L", "money"),
            *(Column(k, k, "money") for k in keys),
        ],
        rows=[[d["date"], d["total_pnl"], *(d["parts"].get(k, 0.0) for k in keys)] for d in series],
        printed=False,
    )


def attribution_section(portfolio: Portfolio, as_of: date) -> Section:
    """The stored attribution of the sessions to `as_of`, by factor and specific, with the
    cumulative P&L of each drawn over time."""
    section = Section("attribution", "P&L attribution", as_of=as_of)
    found = attribution_series(portfolio=portfolio, end=as_of, by="factor")
    series = found["series"]
    if not series:
        section.empty = f"No daily attribution is stored up to {as_of}."
        return section
    totals = found["totals"]
    section.tables.append(
        _totals_table("attribution_by_factor", "P&L by factor over the period", "Part", totals)
    )
    keys = sorted(totals, key=lambda k: -abs(totals[k]))
    section.tables.append(_daily_table("attribution_daily", "Daily P&L by factor", series, keys))
    factors = [k for k in keys if k != SPECIFIC]
    drawn, rest = factors[:CHARTED_FACTORS], factors[CHARTED_FACTORS:]
    dates = [d["date"] for d in series]

    def cumulative(names: list[str]) -> list[float]:
        daily = [sum(d["parts"].get(n, 0.0) for n in names) for d in series]
        return np.cumsum(daily).tolist()

    lines = {name: cumulative([name]) for name in drawn}
    if rest:
        lines["Other factors"] = cumulative(rest)
    lines["Specific"] = cumulative([SPECIFIC, "other"])
    lines["Total"] = np.cumsum([d["total_pnl"] for d in series]).tolist()
    section.charts.append(
        Chart(
            "Cumulative P&L by factor and specific",
            partial(charts.lines, dates, lines, "Cumulative P&L by factor and specific"),
        )
    )
    section.notes.append(
        "Factor P&L = yesterday's dollar exposure to each factor x today's factor move; specific "
        "= the day's P&L - factor P&L, so the parts add up to each day's P&L. Pro-forma days "
        "(the history rebuilt with today's holdings and exposures) are marked in the CSV."
        if any(d["basis"] == "pro_forma" for d in series)
        else "Factor P&L = yesterday's dollar exposure to each factor x today's factor move; "
        "specific = the day's P&L - factor P&L, so the parts add up to each day's P&L."
    )
    return section


def attribution_detail_sections(portfolio: Portfolio, as_of: date) -> list[Section]:
    """The attribution report's other views: the options' Greeks explain, by underlying and by
    position, each over the same sessions."""
    sections = []
    for by, title, label in (
        ("greek", "P&L by Greek (options' explain)", "Part"),
        ("underlying", "P&L by underlying", "Underlying"),
        ("position", "P&L by position", "Position"),
    ):
        section = Section(f"attribution_{by}", title, as_of=as_of)
        found = attribution_series(portfolio=portfolio, end=as_of, by=by)
        if not found["series"]:
            section.empty = f"No daily attribution is stored up to {as_of}."
        else:
            section.tables.append(
                _totals_table(f"attribution_{by}_totals", title, label, found["totals"])
            )
            keys = sorted(found["totals"], key=lambda k: -abs(found["totals"][k]))
            section.tables.append(
                _daily_table(f"attribution_{by}_daily", f"{title}, daily", found["series"], keys)
            )
        if by == "greek":
            section.notes.append(
                "Greeks explain = delta dS + 1/2 gamma dS^2 + vega d(sigma) + theta dt + rho dr "
                "with yesterday's Greeks; residual = what full revaluation leaves; other = the "
                "stocks' P&L and that of options without Greeks on both days."
            )
        sections.append(section)
    return sections
