"""The risk summary's options section: each option position's exercise style, the dividend yield
and volatility its Greeks used, and its early exercise premium, from the session's stored Greeks
(`analytics.selectors.book_frame`, the frame GET /risk/greeks/ reads)."""

from __future__ import annotations

from datetime import date

import numpy as np

from analytics import selectors
from modeling.reports.document import Column, Section, Table
from portfolios.models import Portfolio

MODELS = (
    "American contracts (stocks and ETFs) are valued by Bjerksund-Stensland (2002), European "
    "ones (cash-settled index options) by Black-Scholes-Merton, both with the underlying's "
    "continuous dividend yield. The early exercise premium is the American value less the "
    "European one at the same inputs, per share and for the position (x contracts x multiplier)."
)


def _number(value: object) -> float | None:
    number = float(value) if isinstance(value, int | float) else np.nan
    return None if np.isnan(number) else number


def options_section(portfolio: Portfolio, as_of: date) -> Section:
    """One row per open option position with stored Greeks, largest premium first."""
    section = Section("options", "Options: exercise style and early exercise", as_of=as_of)
    frame, quality = selectors.book_frame([portfolio.pk], as_of)
    options = frame[frame["is_option"] & frame["exercise_style"].notna()]
    if options.empty:
        section.empty = (
            "The portfolio holds no options."
            if not frame["is_option"].any()
            else f"No option has stored Greeks for {as_of}."
        )
        return section
    units = options["quantity"] * options["multiplier"]
    value = options["early_exercise_premium"] * units
    order = np.argsort(-np.abs(np.nan_to_num(value.to_numpy(dtype=float))), kind="stable")
    rows = []
    for i in order:
        row = options.iloc[i]
        rows.append(
            [
                str(row["symbol"]),
                str(row["underlying_symbol"]),
                str(row["exercise_style"]),
                _number(row["quantity"]),
                _number(row["strike"]),
                row["expiration"],
                _number(row["volatility"]),
                str(row["volatility_source"]),
                _number(row["dividend_yield"]),
                _number(row["early_exercise_premium"]),
                _number(value.iloc[i]),
            ]
        )
    section.tables.append(
        Table(
            key="options",
            title="Options by early exercise premium",
            columns=[
                Column("symbol", "Contract"),
                Column("underlying", "Underlying"),
                Column("style", "Style"),
                Column("quantity", "Contracts", "number"),
                Column("strike", "Strike", "money"),
                Column("expiration", "Expiration", "date"),
                Column("volatility", "Volatility", "percent"),
                Column("volatility_source", "Volatility source"),
                Column("dividend_yield", "Dividend yield", "percent"),
                Column("premium_per_share", "Early exercise premium per share", "number"),
                Column("premium", "Early exercise premium", "money"),
            ],
            rows=rows,
        )
    )
    section.notes.append(MODELS)
    if quality["missing_greeks"]:
        section.notes.append(
            f"{quality['missing_greeks']} option positions have no stored Greeks for {as_of}."
        )
    return section
