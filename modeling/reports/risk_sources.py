"""The risk summary's sections on where the risk sits: liquidity (days to liquidate at the
default participation, the share of the gross sellable in 1, 5 and 10 days, flagged positions)
and concentration (top names, Herfindahl, sectors), from the same services as
GET /risk/liquidity/ and GET /risk/concentration/ (`analytics.liquidity`)."""

from __future__ import annotations

from datetime import date

from analytics.liquidity import portfolio_concentration, portfolio_liquidity
from modeling.reports.document import Column, Section, Table
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
