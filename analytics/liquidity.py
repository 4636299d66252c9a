"""Liquidity and concentration of a book on one session (issue "Where the risk comes from", items
4 and 5), from stored data only: the valued book frame (closes, stored Greeks), the stored daily
volumes and the securities' stored sector and industry. A fixed number of queries whatever the
size of the book; the maths is in `analytics.calculations.liquidity`.

Rules:
- ADV is the mean stored volume of the underlying over the last `ADV_SESSIONS` NYSE sessions to
  the session (itself included); a session without a stored volume is left out; fewer than
  `MIN_VOLUMES` volumes: ADV unknown, the position reported with `days_to_liquidate` null and a
  reason.
- Every position trades through its underlying's volume in delta-equivalent shares, |position
  delta|: a stock's quantity, an option's per-share delta x contracts x multiplier. Listed
  option volume is not stored (the providers' daily bars are the underlyings'), and an option
  position is hedged or unwound in practice through its delta in the underlying.
- Names are underlying symbols; a name's gross and the book's gross sum |exposure| as the
  summary's `exposures.gross` does (an option at its premium), so the shares here add up to the
  gross the rest of the API reports. Sectors and industries are the underlying's stored
  classification, "Unclassified" when blank or unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from analytics.calculations import liquidity as calc
from analytics.provenance import data_quality_sources
from analytics.selectors import BookQuality, ReadCache, book_frame
from marketdata import calendar
from marketdata.models import DailyPrice, Security

ADV_SESSIONS = 20
MIN_VOLUMES = 10
HORIZONS = (1, 5, 10)  # sessions
TOP_NAMES = (5, 10)
UNCLASSIFIED = "Unclassified"

# Why a position's days to liquidate are unknown (`LiquidityRow.reason`).
INSUFFICIENT_VOLUME = "insufficient_volume_history"
NO_TRADED_VOLUME = "no_traded_volume"
MISSING_GREEKS = "missing_greeks"
BEYOND_RANGE = "beyond_range"
REASONS = {
    INSUFFICIENT_VOLUME: f"fewer than {MIN_VOLUMES} of the underlying's last {ADV_SESSIONS} "
    "sessions have a stored volume",
    NO_TRADED_VOLUME: "the underlying's stored volumes are all zero",
    MISSING_GREEKS: "an option without stored Greeks for the session: no delta to trade",
    BEYOND_RANGE: "more sessions than a number can hold at this participation",
}


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def volumes_panel(symbols: list[str], as_of: date, sessions: int = ADV_SESSIONS) -> pd.DataFrame:
    """Stored volumes (sessions x symbols, shares) over the last `sessions` NYSE sessions to
    `as_of`; NaN where a session has no bar or a bar without a volume (one query)."""
    days = calendar.sessions_back(as_of, sessions)
    if not symbols:
        return pd.DataFrame(index=days, dtype=float)
    rows = DailyPrice.objects.filter(
        security__symbol__in=symbols, date__gte=days[0], date__lte=as_of, volume__isnull=False
    ).values_list("date", "security__symbol", "volume")
    frame = pd.DataFrame.from_records(list(rows), columns=["date", "symbol", "volume"])
    if frame.empty:
        return pd.DataFrame(np.nan, index=days, columns=symbols)
    wide = frame.pivot(index="date", columns="symbol", values="volume")
    return wide.reindex(index=days, columns=symbols).astype(float)


def classifications(symbols: list[str]) -> dict[str, tuple[str, str]]:
    """Stored (sector, industry) per symbol, "Unclassified" where blank or unknown (one query)."""
    stored = Security.objects.filter(symbol__in=symbols).values_list("symbol", "sector", "industry")
    known = {
        s: (sector or UNCLASSIFIED, industry or UNCLASSIFIED) for s, sector, industry in stored
    }
    return {s: known.get(s, (UNCLASSIFIED, UNCLASSIFIED)) for s in symbols}


def _data_quality(frame: pd.DataFrame, quality: BookQuality, as_of: date) -> dict[str, Any]:
    symbols = set(frame["symbol"]) | set(frame["underlying_symbol"])
    return {**data_quality_sources(symbols, as_of, factors=False, rates=False), **quality}


# Liquidity ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiquidityRow:
    position: int
    symbol: str
    underlying: str
    is_option: bool
    shares: Decimal | None  # delta-equivalent shares, absolute
    exposure: Decimal | None  # signed, currency; None when unvalued
    adv: Decimal | None  # shares per session
    volume_sessions: int
    days_to_liquidate: float | None
    flagged: bool
    reason: str | None


@dataclass(frozen=True)
class LiquidityReport:
    portfolio: int
    as_of: date
    participation: float
    flag_days: float
    adv_sessions: int
    min_volume_sessions: int
    gross: Decimal
    liquidatable: dict[str, float | None]
    unknown_share: float | None
    flagged: int
    positions: list[LiquidityRow]
    data_quality: dict[str, Any]


def portfolio_liquidity(
    *,
    portfolio_id: int,
    as_of: date,
    participation: float | None = None,
    reads: ReadCache | None = None,
) -> LiquidityReport:
    """Days to liquidate each position and the share of the book's gross sold within
    `HORIZONS`, at `participation` of the ADV (default SIGMASIGHT_LIQUIDITY_PARTICIPATION)."""
    if participation is None:
        participation = settings.SIGMASIGHT_LIQUIDITY_PARTICIPATION
    flag_days = settings.SIGMASIGHT_LIQUIDITY_FLAG_DAYS
    frame, quality = book_frame([portfolio_id], as_of, reads=reads)
    underlyings = sorted(set(frame["underlying_symbol"]))
    volume = calc.average_daily_volume(
        volumes_panel(underlyings, as_of).to_numpy(dtype=float), min_observations=MIN_VOLUMES
    )
    column = frame["underlying_symbol"].map({s: i for i, s in enumerate(underlyings)})
    at = column.to_numpy(dtype=np.intp)
    adv, observed = volume.adv[at], volume.observations[at]
    shares = np.abs(frame["delta"].to_numpy(dtype=float))
    exposure = frame["exposure"].to_numpy(dtype=float)
    days = calc.days_to_liquidate(shares, adv, participation)
    sold, gross = calc.liquidatable_shares(exposure, days, HORIZONS)
    reason = np.select(
        [np.isnan(shares), np.isnan(adv), adv == 0, np.isinf(days)],
        [MISSING_GREEKS, INSUFFICIENT_VOLUME, NO_TRADED_VOLUME, BEYOND_RANGE],
        default="",
    )
    unknown = np.abs(np.nan_to_num(exposure))[np.isnan(days)].sum()
    rows = [
        LiquidityRow(
            position=int(position),
            symbol=str(symbol),
            underlying=str(underlying),
            is_option=bool(is_option),
            shares=None if np.isnan(n) else Decimal(f"{n:.4f}"),
            exposure=None if np.isnan(e) else _money(e),
            adv=None if np.isnan(a) else _money(a),
            volume_sessions=int(k),
            days_to_liquidate=float(d) if np.isfinite(d) else None,
            flagged=bool(d > flag_days),
            reason=str(r) or None,
        )
        for position, symbol, underlying, is_option, n, e, a, k, d, r in zip(
            frame["id"],
            frame["symbol"],
            frame["underlying_symbol"],
            frame["is_option"],
            shares,
            exposure,
            adv,
            observed,
            days,
            reason,
            strict=True,
        )
    ]
    return LiquidityReport(
        portfolio=portfolio_id,
        as_of=as_of,
        participation=participation,
        flag_days=flag_days,
        adv_sessions=ADV_SESSIONS,
        min_volume_sessions=MIN_VOLUMES,
        gross=_money(gross),
        liquidatable={str(h): _number(s) for h, s in zip(HORIZONS, sold, strict=True)},
        unknown_share=float(unknown / gross) if gross else None,
        flagged=sum(row.flagged for row in rows),
        positions=rows,
        data_quality=_data_quality(frame, quality, as_of),
    )


# Concentration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameRow:
    key: str
    gross: Decimal
    share: float | None


@dataclass(frozen=True)
class GroupRow:
    key: str
    gross: Decimal
    net: Decimal
    long: Decimal
    short: Decimal
    share: float | None


@dataclass(frozen=True)
class ConcentrationReport:
    portfolio: int
    as_of: date
    gross: Decimal
    top: int
    top_share: float | None
    top_shares: dict[str, float | None]
    herfindahl: float | None
    effective_names: float | None
    names: list[NameRow]
    sectors: list[GroupRow]
    industries: list[GroupRow]
    unvalued: int
    data_quality: dict[str, Any]


def _groups(found: calc.GroupExposures) -> list[GroupRow]:
    return [
        GroupRow(key, _money(g), _money(n), _money(lo), _money(sh), _number(s))
        for key, g, n, lo, sh, s in zip(
            found.keys, found.gross, found.net, found.long, found.short, found.share, strict=True
        )
    ]


def portfolio_concentration(
    *, portfolio_id: int, as_of: date, top: int = 10, reads: ReadCache | None = None
) -> ConcentrationReport:
    """The book's gross by name (top-N shares, Herfindahl, effective names) and its exposures by
    stored sector and industry."""
    frame, quality = book_frame([portfolio_id], as_of, reads=reads)
    underlying = frame["underlying_symbol"].astype(str).tolist()
    exposure = frame["exposure"].to_numpy(dtype=float)
    names = calc.name_concentration(underlying, exposure)
    classes = classifications(sorted(set(underlying)))
    sectors = calc.group_exposures([classes[u][0] for u in underlying], exposure)
    industries = calc.group_exposures([classes[u][1] for u in underlying], exposure)
    weights = names.weights if names.total else np.full(len(names.keys), np.nan)
    return ConcentrationReport(
        portfolio=portfolio_id,
        as_of=as_of,
        gross=_money(names.total),
        top=top,
        top_share=_number(names.top_share(top)),
        top_shares={str(n): _number(names.top_share(n)) for n in TOP_NAMES},
        herfindahl=_number(names.herfindahl),
        effective_names=_number(names.effective_names),
        names=[
            NameRow(key, _money(g), _number(w))
            for key, g, w in zip(names.keys, names.gross, weights, strict=True)
        ],
        sectors=_groups(sectors),
        industries=_groups(industries),
        unvalued=int(frame["exposure"].isna().sum()),
        data_quality=_data_quality(frame, quality, as_of),
    )
