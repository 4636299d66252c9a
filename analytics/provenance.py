"""Where a result's numbers come from: the `data_quality` sources of every answer that has one.

A result rests on up to three kinds of series: the book's own prices (positions and their
underlyings), the factor proxies (SPY and the style ETFs) and the rate series (US10Y, US3M). Each
series has one source family (DESIGN.md, "Price provenance"); the source of a series is the one
of its latest close on or before the session. `data_quality.source` is the one source everything
rests on, `mixed` when real prices (csv, polygon, yfinance) meet synthetic ones, so nobody reads
a synthetic beta of a real book as a real one; several real sources are joined with `+`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from analytics.models import FactorDefinition
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.providers.registry import current_source
from marketdata.services import current_prices

SYNTHETIC = "synthetic"


def combined_source(sources: Iterable[str]) -> str:
    """One label for a set of sources: the source itself, `mixed` when synthetic meets real,
    real ones joined with `+`; the configured source when there is none (nothing priced)."""
    found = sorted(set(sources))
    if not found:
        return current_source()
    if len(found) == 1:
        return found[0]
    if SYNTHETIC in found:
        return "mixed"
    return "+".join(found)


@dataclass(frozen=True)
class Provenance:
    """The sources of every series a set of results may rest on, read once per request or
    batch chunk (one current_prices call)."""

    by_symbol: dict[str, str]
    factor_symbols: tuple[str, ...]
    rate_symbols: tuple[str, ...]

    def _of(self, symbols: Iterable[str]) -> list[str]:
        return sorted({self.by_symbol[s] for s in symbols if s in self.by_symbol})

    def for_book(self, symbols: Iterable[str], *, factors: bool = True, rates: bool = True) -> dict:
        """`{source, mixed, sources: {book, factors, rates}}` for a book holding `symbols`."""
        parts = {
            "book": self._of(symbols),
            "factors": self._of(self.factor_symbols) if factors else [],
            "rates": self._of(self.rate_symbols) if rates else [],
        }
        everything = {s for found in parts.values() for s in found}
        source = combined_source(everything)
        return {"source": source, "mixed": source == "mixed", "sources": parts}


def provenance_load(symbols: Iterable[str], as_of: date) -> Provenance:
    """Sources of `symbols`, the active factor proxies and the rate series on `as_of`."""
    proxies = tuple(
        FactorDefinition.objects.filter(is_active=True, factor_type="style")
        .exclude(etf_proxy="")
        .order_by("display_order", "id")
        .values_list("etf_proxy", flat=True)
    )
    rates = (RATE_10Y, RATE_SHORT)
    wanted = sorted(set(symbols) | set(proxies) | set(rates))
    quotes = current_prices(wanted, as_of=as_of)
    return Provenance(
        by_symbol={s: q.source for s, q in quotes.items()},
        factor_symbols=proxies,
        rate_symbols=rates,
    )


def data_quality_sources(symbols: Iterable[str], as_of: date, **parts: bool) -> dict:
    """The sources part of `data_quality` for one book (see `Provenance.for_book`)."""
    symbols = list(symbols)
    return provenance_load(symbols, as_of).for_book(symbols, **parts)
