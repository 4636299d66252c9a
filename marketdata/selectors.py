"""Market-data reads for the API: ordered querysets, a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db.models import Count, F, Max, QuerySet, Window
from django.db.models.functions import RowNumber

from marketdata.models import DailyPrice, DividendYield, Security


def price_history(security: Security, start: date | None, end: date | None) -> QuerySet[DailyPrice]:
    queryset = DailyPrice.objects.filter(security=security).order_by("date")
    if start:
        queryset = queryset.filter(date__gte=start)
    if end:
        queryset = queryset.filter(date__lte=end)
    return queryset


def option_chain(
    underlying: str, expiration: date | None, as_of: date | None
) -> QuerySet[DailyPrice]:
    """Each contract of the underlying with its latest cached quote on or before `as_of`."""
    quotes = DailyPrice.objects.filter(
        security__asset_type=Security.AssetType.OPTION, security__underlying=underlying
    )
    if expiration:
        quotes = quotes.filter(security__expiration=expiration)
    if as_of:
        quotes = quotes.filter(date__lte=as_of)
    return (
        quotes.annotate(
            rank=Window(RowNumber(), partition_by=[F("security_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .select_related("security")
        .order_by("security__expiration", "security__strike", "security__option_type")
    )


def dividend_yields(symbols: Iterable[str], as_of: date) -> dict[str, float]:
    """Each symbol's latest dividend yield on or before `as_of` (continuous, annual, decimal:
    0.03 is 3%), in one query. Symbols without one are absent: callers use 0 and say so."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    rows = (
        DividendYield.objects.filter(security__symbol__in=wanted, date__lte=as_of)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("security_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .order_by("security__symbol")
        .values_list("security__symbol", "dividend_yield")
    )
    return {symbol: float(value) for symbol, value in rows}


def price_sources(session: date) -> list[dict[str, Any]]:
    """Each price source: how many securities it priced, its latest close and fetch, and how many
    of its securities have no close for `session` (stale). Newest first."""
    latest = (
        DailyPrice.objects.values("source")
        .annotate(
            securities=Count("security", distinct=True),
            latest=Max("date"),
            fetched_at=Max("fetched_at"),
        )
        .order_by("-latest", "source")
    )
    last_close = (
        DailyPrice.objects.values("source", "security")
        .annotate(last=Max("date"))
        .filter(last__lt=session)
        .values("source")
        .annotate(stale=Count("security"))
        .order_by()
    )
    stale = {row["source"]: row["stale"] for row in last_close}
    return [{**row, "stale": stale.get(row["source"], 0)} for row in latest]
