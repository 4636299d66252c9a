"""The risk summary's sections on where the risk sits: contributions (the stored Euler components
of VaR, by underlying and by factor), liquidity (days to liquidate at the default participation,
the share of the gross sellable in 1, 5 and 10 days, flagged positions) and concentration (top
names, Herfindahl, sectors), from the same services as GET /risk/contributions/,
/risk/liquidity/ and /risk/concentration/ (`analytics.contributions`, `analytics.liquidity`)."""

from __future__ import annotations

from datetime import date
from functools import partial

from analytics.contribution_selectors import ContributionRow, risk_contributions
from analytics.liquidity import portfolio_concentration, portfolio_liquidity
from modeling.reports import charts
from modeling.reports.document import Chart, Column, Section, Table
from portfolios.models import Portfolio

LIQUIDITY_SHOWN = 15  # positions in the printed table, slowest first (the CSV holds every one)


def liquidity_section(portfolio: Portfolio, as_of: date) -> Section:
    section = Section("liquidity", "Liquidity", as_of=as_of)
    report = portfolio_liquidity(portfolio_id=portfolio.pk, as_of=as_of)
    if not report.positions:
        section.empty = "The portfolio has no open positions."
        return section
    section.tables.append(
        Table(
            key="liquidity_summary",
            title="Share of the gross sellable within",
            columns=[Column("horizon", "Sessions"), Column("share", "Share of gross", "percent")],
            rows=[[f"{h} sessions", share] for h, share in report.liquidatable.items()]
            + [["unknown (no volume history)", report.unknown_share]],
        )
    )
    slowest = sorted(
        report.positions,
        key=lambda r: (r.days_to_liquidate is not None, -(r.days_to_liquidate or 0.0)),
    )
    rows = [
        [
            r.symbol,
            r.underlying,
            r.shares,
            r.adv,
            r.days_to_liquidate,
            "yes" if r.flagged else "",
            r.reason or "",
        ]
        for r in slowest
    ]
    columns = [
        Column("symbol", "Position"),
        Column("underlying", "Underlying"),
        Column("shares", "Delta-equivalent shares", "number"),
        Column("adv", "ADV (shares)", "number"),
        Column("days", "Days to liquidate", "number"),
        Column("flagged", "Flagged"),
        Column("reason", "Why unknown"),
    ]
    section.tables.append(
        Table("liquidity_positions", "Positions, slowest first", columns, rows[:LIQUIDITY_SHOWN])
    )
    if len(rows) > LIQUIDITY_SHOWN:
        section.tables.append(
            Table("liquidity_all", "Every position", columns, rows, printed=False)
        )
    section.notes.append(
        f"At {report.participation:.0%} of the {report.adv_sessions}-session average daily "
        f"volume; options through their underlying at their delta. {report.flagged} positions "
        f"take more than {report.flag_days:g} sessions."
    )
    return section


def concentration_section(portfolio: Portfolio, as_of: date) -> Section:
    section = Section("concentration", "Concentration", as_of=as_of)
    report = portfolio_concentration(portfolio_id=portfolio.pk, as_of=as_of)
    if not report.names:
        section.empty = "The portfolio has no open positions."
        return section
    section.tables.append(
        Table(
            key="concentration_summary",
            title="Concentration of the gross",
            columns=[Column("measure", "Measure"), Column("value", "Value")],
            rows=[
                ["Top 5 names' share", report.top_shares.get("5")],
                ["Top 10 names' share", report.top_shares.get("10")],
                ["Herfindahl index", report.herfindahl],
                ["Effective number of names", report.effective_names],
            ],
            row_kinds=["percent", "percent", "number", "number"],
        )
    )
    section.tables.append(
        Table(
            key="concentration_sectors",
            title="Exposure by sector",
            columns=[
                Column("sector", "Sector"),
                Column("gross", "Gross", "money"),
                Column("net", "Net", "money"),
                Column("share", "Share of gross", "percent"),
            ],
            rows=[[g.key, g.gross, g.net, g.share] for g in report.sectors],
        )
    )
    return section


CONTRIBUTORS = 10  # the chart's and the printed table's top contributors


def contributions_section(portfolio: Portfolio, as_of: date) -> Section:
    """Where the 95% one-day VaR comes from (historical, the stored Euler components): the top
    contributors by underlying, and the parametric split by factor and specific, from the same
    reader as GET /risk/contributions/ (`analytics.contribution_selectors.risk_contributions`)."""
    section = Section("contributions", "Risk contributions", as_of=as_of)
    found = risk_contributions(portfolio=portfolio, as_of=as_of, by="underlying")
    if found is None or found.total is None:
        why = found.unavailable if found is not None else None
        section.empty = f"No VaR contributions are stored up to {as_of}" + (
            f": {why}." if why else "."
        )
        return section
    rows = sorted(found.contributions, key=lambda r: -abs(r.component or 0.0))
    columns = [
        Column("underlying", "Underlying"),
        Column("exposure", "Exposure", "money"),
        Column("component", "VaR contribution", "money"),
        Column("marginal", "Marginal VaR per $", "number"),
        Column("percent", "Share of VaR", "percent"),
    ]

    def cells(r: ContributionRow) -> list[object]:
        return [r.key, r.exposure, r.component, r.marginal, r.percent]

    section.tables.append(
        Table(
            "contributions_top",
            f"Top {CONTRIBUTORS} contributors to the 95% 1-day historical VaR",
            columns,
            [cells(r) for r in rows[:CONTRIBUTORS]] + [["Total", None, found.total, None, 1.0]],
        )
    )
    section.tables.append(
        Table(
            "contributions_all",
            "Every underlying",
            columns,
            [cells(r) for r in rows],
            printed=False,
        )
    )
    top = rows[:CONTRIBUTORS]
    section.charts.append(
        Chart(
            "Top contributors to VaR",
            partial(
                charts.bars,
                [r.key for r in top],
                [-(r.component or 0.0) for r in top],
                "Top contributors to VaR (bars: P&L at risk, losses red)",
            ),
        )
    )
    factors = risk_contributions(portfolio=portfolio, as_of=as_of, method="parametric", by="factor")
    if factors is not None and factors.total is not None:
        section.tables.append(
            Table(
                "contributions_factors",
                "Parametric 95% VaR by factor and specific",
                [
                    Column("factor", "Factor"),
                    Column("component", "VaR contribution", "money"),
                    Column("percent", "Share of VaR", "percent"),
                ],
                [[r.key, r.component, r.percent] for r in factors.contributions]
                + [["Total", factors.total, 1.0]],
            )
        )
    section.notes.append(
        "Euler allocation: each contribution is the position's exposure x its marginal VaR, and "
        "the contributions add up to the VaR. Historical: the positions' P&L on the VaR day "
        "(options by their own closes); parametric: the factor model (options by their delta)."
    )
    return section
