"""Dividend yields of underlyings: fetch them from the providers, import them from a CSV, and
store them dated (`DividendYield`: continuous, annual, decimal; the q of an option's price).

Provenance as for prices: a series has one source. The synthetic market gives yields only to
names it owns (no real prices, no real yields), and an imported file replaces the synthetic
yields of its symbols.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import IO

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from marketdata import calendar, dividend_csv
from marketdata.fetch import (
    RATE_NAMES,
    SYNTHETIC,
    normalize_symbols,
    real_series,
    securities_ensure,
)
from marketdata.models import DividendYield
from marketdata.providers import registry
from marketdata.providers.base import MarketDataProvider, ProviderError
from marketdata.symbols import looks_like_occ
from sigmasight.exceptions import ValidationFailed
from sigmasight.metrics import provider_call

logger = logging.getLogger("sigmasight.market_data")

CSV = "csv"


@dataclass
class DividendFetch:
    """What a fetch stored: yields by source, the symbols no provider had (their callers use 0
    and say so) and each failing provider's last error."""

    as_of: date
    stored: dict[str, int] = field(default_factory=dict)  # source -> yields written
    missing: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _upsert(rows: list[DividendYield]) -> int:
    """Insert or update rows on (security, date), in one statement."""
    DividendYield.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["security", "date"],
        update_fields=["dividend_yield", "source", "fetched_at"],
    )
    return len(rows)


def _real_yields(symbols: Iterable[str]) -> set[str]:
    """Symbols with a yield from a source other than the synthetic market."""
    queryset = DividendYield.objects.filter(security__symbol__in=list(symbols)).exclude(
        source=SYNTHETIC
    )
    return set(queryset.values_list("security__symbol", flat=True).distinct())


def _plausible(symbol: str, value: float, source: str) -> bool:
    if math.isfinite(value) and 0 <= value < 1:
        return True
    logger.warning(
        "dividend yield out of range, not stored",
        extra={"symbol": symbol, "source": source, "value": repr(value)},
    )
    return False


def dividend_yields_fetch_and_cache(
    *,
    symbols: Iterable[str],
    as_of: date | None = None,
    providers: list[MarketDataProvider] | None = None,
) -> DividendFetch:
    """Store each stock, ETF or index symbol's dividend yield dated `as_of` (default: the last
    completed session), asking the providers only for symbols without a yield on that date and
    walking the fallback chain. Options and rate series are left out (an option's yield is its
    underlying's)."""
    as_of = as_of or calendar.last_completed_session()
    wanted = [
        s for s in normalize_symbols(symbols) if not looks_like_occ(s) and s not in RATE_NAMES
    ]
    report = DividendFetch(as_of=as_of)
    have = set(
        DividendYield.objects.filter(security__symbol__in=wanted, date=as_of).values_list(
            "security__symbol", flat=True
        )
    )
    pending = [s for s in wanted if s not in have]
    for provider in providers if providers is not None else registry.chain():
        asked = pending
        if provider.name == SYNTHETIC:
            # The synthetic market fills only names it owns: never one with real prices or yields.
            owned_elsewhere = real_series(asked) | _real_yields(asked)
            asked = [s for s in asked if s not in owned_elsewhere]
        if not asked:
            continue
        try:
            with provider_call(provider.name, "dividend_yields"):
                answer = provider.dividend_yields(asked, as_of)
        except (ProviderError, NotImplementedError) as exc:
            report.failures[provider.name] = str(exc)
            logger.warning(
                "dividend yield fetch failed, falling back",
                extra={"provider": provider.name, "error": str(exc)},
            )
            continue
        found = {
            s: float(answer[s])
            for s in asked
            if s in answer and _plausible(s, float(answer[s]), provider.name)
        }
        if found:
            with transaction.atomic():
                ids = securities_ensure(sorted(found))
                now = timezone.now()
                written = _upsert(
                    [
                        DividendYield(
                            security_id=ids[s],
                            date=as_of,
                            dividend_yield=value,
                            source=provider.name,
                            fetched_at=now,
                        )
                        for s, value in found.items()
                    ]
                )
            report.stored[provider.name] = report.stored.get(provider.name, 0) + written
        pending = [s for s in pending if s not in found]
    report.missing = pending
    return report


@dataclass(frozen=True)
class DividendImport:
    """What a dividend-yield file brought: `rows` written (on a dry run: valid) and, per symbol,
    the synthetic yields it removed (would remove): a series has one source."""

    rows: int
    replaced_synthetic: dict[str, int] = field(default_factory=dict)


def dividend_yields_import_csv(
    *, stream: IO[bytes] | IO[str], dry_run: bool = False
) -> DividendImport:
    """Validate a whole dividend-yield file and write it in one transaction (source "csv"), or
    raise ValidationFailed listing every bad row and write nothing."""
    try:
        frame = dividend_csv.parse_dividend_yields(stream)
    except dividend_csv.DividendFileError as exc:
        raise ValidationFailed(
            f"The dividend-yield file has {len(exc.errors)} problem(s); nothing was imported.",
            fields={"rows": exc.errors},
        ) from exc
    symbols = sorted(frame["symbol"].unique())
    synthetic = DividendYield.objects.filter(security__symbol__in=symbols, source=SYNTHETIC)
    replaced = dict(
        synthetic.values("security__symbol")
        .annotate(n=Count("id"))
        .values_list("security__symbol", "n")
        .order_by("security__symbol")
    )
    if dry_run:
        return DividendImport(rows=len(frame), replaced_synthetic=replaced)
    now = timezone.now()
    with transaction.atomic():
        ids = securities_ensure(symbols)
        if replaced:
            DividendYield.objects.filter(security_id__in=ids.values(), source=SYNTHETIC).delete()
        written = _upsert(
            [
                DividendYield(
                    security_id=ids[line.symbol],
                    date=line.date,
                    dividend_yield=line.dividend_yield,
                    source=CSV,
                    fetched_at=now,
                )
                for line in frame.itertuples(index=False)
            ]
        )
    return DividendImport(rows=written, replaced_synthetic=replaced)
