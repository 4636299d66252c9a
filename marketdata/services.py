"""Market-data writes and orchestration: fetch only what the cache lacks, walk the provider
fallback chain, write in bulk, and say where every number came from. The fetch path itself is
in fetch.py, dividend yields in dividends.py (both re-exported here)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO

from django.db import transaction
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from marketdata import calendar, price_csv
from marketdata.dividends import (
    DividendFetch,
    DividendImport,
    dividend_yields_fetch_and_cache,
    dividend_yields_import_csv,
)
from marketdata.fetch import (
    RATE_NAMES,
    SYNTHETIC,
    FetchReport,
    MarketDataPending,
    normalize_symbols,
    prices_fetch_and_cache,
    prices_fetch_within,
    real_series,
    securities_ensure,
)
from marketdata.models import BackfillProgress, DailyPrice, Security
from marketdata.providers import registry
from marketdata.providers.base import MarketDataProvider, ProviderError
from marketdata.symbols import looks_like_occ, normalize_ticker
from marketdata.writes import prices_upsert
from sigmasight.exceptions import ValidationFailed
from sigmasight.exports import TextSink
from sigmasight.metrics import provider_call

__all__ = [
    "RATE_NAMES",
    "CurrentPrice",
    "DividendFetch",
    "DividendImport",
    "FetchReport",
    "MarketDataPending",
    "PriceImport",
    "backfill_prices",
    "backfill_range",
    "current_prices",
    "current_prices_pair",
    "dividend_yields_fetch_and_cache",
    "dividend_yields_import_csv",
    "expected_session",
    "normalize_symbols",
    "option_chain_fetch_and_cache",
    "prices_export_csv",
    "prices_fetch_and_cache",
    "prices_fetch_within",
    "prices_import_csv",
    "sectors_fetch_and_cache",
    "securities_ensure",
]

logger = logging.getLogger("sigmasight.market_data")


@dataclass(frozen=True)
class CurrentPrice:
    price: Decimal
    date: date
    source: str
    stale: bool


def expected_session(as_of: date | None = None, now: datetime | None = None) -> date:
    """The session whose close a fresh price should carry."""
    latest = calendar.last_completed_session(now)
    if as_of is None or as_of >= latest:
        return latest
    return as_of if calendar.is_trading_day(as_of) else calendar.previous_trading_day(as_of)


def current_prices(
    symbols: Iterable[str], *, as_of: date | None = None, now: datetime | None = None
) -> dict[str, CurrentPrice]:
    """Latest cached close on or before `as_of` for each symbol, with its date and staleness.
    One query over the last weeks (the usual case); a second, unbounded one only for symbols with
    no close in that window. Symbols with no cached price are absent."""
    symbols = normalize_symbols(symbols)
    expected = expected_session(as_of, now)
    recent = expected - timedelta(days=RECENT_DAYS)
    found = _latest_closes(symbols, expected, since=recent)
    older = [s for s in symbols if s not in found]
    if older:
        found.update(_latest_closes(older, expected, since=None))
    return found


RECENT_DAYS = 21  # calendar days: covers any run of market holidays


def _latest_closes(symbols: list[str], expected: date, *, since: date | None) -> dict:
    queryset = DailyPrice.objects.filter(security__symbol__in=symbols, date__lte=expected)
    if since is not None:
        queryset = queryset.filter(date__gte=since)
    rows = (
        queryset.annotate(
            rank=Window(RowNumber(), partition_by=[F("security_id")], order_by=F("date").desc())
        )
        .filter(rank=1)
        .values_list("security__symbol", "close", "date", "source")
    )
    return {
        symbol: CurrentPrice(close, day, source, day < expected)
        for symbol, close, day, source in rows
    }


def current_prices_pair(
    symbols: Iterable[str], *, as_of: date, previous: date, now: datetime | None = None
) -> tuple[dict[str, CurrentPrice], dict[str, CurrentPrice]]:
    """`current_prices` on `as_of` and on an earlier `previous` session (a book's close and
    the one its daily P&L starts from) in one query over the last weeks: each symbol's three
    latest closes on or before `as_of` hold the previous session's too, unless three closes
    were stored after it or it is older than the weeks read (then `current_prices` answers for
    those symbols, as it does for symbols without a recent close)."""
    symbols = normalize_symbols(symbols)
    expected, before = expected_session(as_of, now), expected_session(previous, now)
    rows = (
        DailyPrice.objects.filter(
            security__symbol__in=symbols,
            date__lte=expected,
            date__gte=min(expected, before) - timedelta(days=RECENT_DAYS),
        )
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("security_id")], order_by=F("date").desc())
        )
        .filter(rank__lte=3)
        .order_by("security_id", "rank")
        .values_list("security__symbol", "close", "date", "source", "rank")
    )
    latest: dict[str, list[tuple]] = {}
    for symbol, close, day, source, _ in rows:
        latest.setdefault(symbol, []).append((close, day, source))
    today: dict[str, CurrentPrice] = {}
    earlier: dict[str, CurrentPrice] = {}
    for symbol, closes in latest.items():
        close, day, source = closes[0]
        today[symbol] = CurrentPrice(close, day, source, day < expected)
        prior = next((c for c in closes if c[1] <= before), None)
        if prior is not None:
            earlier[symbol] = CurrentPrice(prior[0], prior[1], prior[2], prior[1] < before)
    # No recent close, or none on or before `previous` among the three: older ones may be.
    if missing := [s for s in symbols if s not in today]:
        today.update(current_prices(missing, as_of=as_of, now=now))
    if missing := [s for s in symbols if s not in earlier]:
        earlier.update(current_prices(missing, as_of=previous, now=now))
    return today, earlier


def sectors_fetch_and_cache(
    *,
    symbols: Iterable[str],
    providers: list[MarketDataProvider] | None = None,
    force: bool = False,
) -> int:
    """Fill sector, industry and name for securities that lack them. Returns how many changed."""
    symbols = [
        s for s in normalize_symbols(symbols) if not looks_like_occ(s) and s not in RATE_NAMES
    ]
    securities_ensure(symbols)
    queryset = Security.objects.filter(symbol__in=symbols)
    if not force:
        queryset = queryset.filter(sector="")
    pending = {s.symbol: s for s in queryset}
    changed: list[Security] = []
    for provider in providers if providers is not None else registry.chain():
        if not pending:
            break
        try:
            with provider_call(provider.name, "sectors"):
                info = provider.sector_industry(sorted(pending))
        except (ProviderError, NotImplementedError) as exc:
            logger.warning("sector fetch failed, falling back", extra={"error": str(exc)})
            continue
        for symbol, sector in info.items():
            security = pending.pop(symbol, None)
            if security is None:
                continue
            security.sector, security.industry = sector.sector, sector.industry
            security.name = sector.name or security.name
            changed.append(security)
    Security.objects.bulk_update(changed, ["sector", "industry", "name", "updated_at"])
    return len(changed)


def option_chain_fetch_and_cache(
    *,
    underlying: str,
    expiration: date | None = None,
    as_of: date | None = None,
    providers: list[MarketDataProvider] | None = None,
) -> FetchReport:
    """Store an option chain: one option Security per contract and its close and implied vol."""
    underlying = normalize_ticker(underlying)
    as_of = as_of or calendar.last_completed_session()
    report = FetchReport(symbols=1)
    for provider in providers if providers is not None else registry.chain():
        try:
            with provider_call(provider.name, "option_chain"):
                chain = provider.option_chain(underlying, expiration, as_of)
        except (ProviderError, NotImplementedError) as exc:
            report.failures[provider.name] = str(exc)
            continue
        finally:
            report.provider_calls += 1
        if provider.name == SYNTHETIC and not chain.empty:
            # The synthetic market fills only series it owns: never a contract with real prices.
            chain = chain[~chain["symbol"].isin(real_series(chain["symbol"]))]
        if chain.empty:
            continue
        with transaction.atomic():
            ids = securities_ensure(chain["symbol"].tolist())
            frame = chain.assign(
                security_id=chain["symbol"].map(ids), adjusted_close=chain["close"]
            )
            report.count(
                provider.name, prices_upsert(frame, source=provider.name, fetched_at=timezone.now())
            )
        return report
    report.missing.append(underlying)
    return report


DEFAULT_BACKFILL_SESSIONS = 400


def backfill_range(
    *,
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> tuple[date, date]:
    """The first and last session a backfill covers: [start, end], or the `days` sessions ending
    at `end` (default 400); `end` defaults to, and never passes, the last completed session.
    Both ends are sessions, so equivalent ranges resume each other. Raises ValueError for a
    range with no session or outside the calendar."""
    if start is not None and days is not None:
        raise ValueError("Give a start date or a number of sessions, not both.")
    latest = calendar.last_completed_session(now)
    end = latest if end is None else min(end, latest)
    if start is None:
        sessions = calendar.sessions_back(end, DEFAULT_BACKFILL_SESSIONS if days is None else days)
    else:
        sessions = calendar.trading_days(start, end)
    if not sessions:
        raise ValueError(f"There is no NYSE session between {start or end} and {end}.")
    return sessions[0], sessions[-1]


def backfill_prices(
    *,
    symbols: Iterable[str],
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    providers: list[MarketDataProvider] | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 50,
    now: datetime | None = None,
) -> FetchReport:
    """Backfill every symbol over a range (see `backfill_range`), a chunk at a time. Rows are
    stored as each provider answers, so a run that fails or is stopped keeps what it fetched.
    Progress is recorded per symbol and range: a run that was interrupted skips the symbols
    already complete and asks the others only for the sessions they still lack."""
    symbols = normalize_symbols(symbols)
    start, end = backfill_range(days=days, start=start, end=end, now=now)
    done = set(
        BackfillProgress.objects.filter(
            symbol__in=symbols, start=start, end=end, status=BackfillProgress.Status.DONE
        ).values_list("symbol", flat=True)
    )
    total = FetchReport(symbols=len(symbols))
    if on_progress and done:
        on_progress(len(done))
    todo = [s for s in symbols if s not in done]
    for offset in range(0, len(todo), chunk):
        batch = todo[offset : offset + chunk]
        report = prices_fetch_and_cache(
            symbols=batch, start=start, end=end, providers=providers, now=now
        )
        _record_progress(batch, start, end, report)
        total.merge(report)
        if on_progress:
            on_progress(len(batch))
    return total


def _record_progress(batch: list[str], start: date, end: date, report: FetchReport) -> None:
    """Done: the symbol lacks no session of the range; failed: why it still does."""
    source = ",".join(sorted(report.rows_by_source))

    def error(symbol: str) -> str:
        gaps = report.gaps[symbol]
        return report.errors.get(
            symbol, f"no provider has {len(gaps)} session(s) from {gaps[0].isoformat()}"
        )

    rows = [
        BackfillProgress(
            symbol=symbol,
            start=start,
            end=end,
            status=BackfillProgress.Status.FAILED
            if symbol in report.gaps
            else BackfillProgress.Status.DONE,
            source=source,
            error=error(symbol) if symbol in report.gaps else "",
        )
        for symbol in batch
    ]
    BackfillProgress.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["symbol", "start", "end"],
        update_fields=["status", "source", "error", "updated_at"],
    )


@dataclass(frozen=True)
class PriceImport:
    """What a price file brought: `rows` written (on a dry run: valid), and per symbol the NYSE
    sessions between its first and last date in the file that the file lacks."""

    rows: int
    gaps: dict[str, price_csv.FileGaps]
    # Symbol -> synthetic closes the import removed (on a dry run: would remove): a series has
    # one source, and the user's own prices replace the synthetic market's.
    replaced_synthetic: dict[str, int] = field(default_factory=dict)


def prices_import_csv(*, stream: IO[bytes] | IO[str], dry_run: bool = False) -> PriceImport:
    """Validate a whole price file and write it in one transaction (source "csv"), or raise
    ValidationFailed listing every bad row and write nothing. The sessions the file lacks are
    reported, not refused: they stay missing in the cache unless it already has them."""
    try:
        frame = price_csv.parse_prices(stream)
    except price_csv.PriceFileError as exc:
        raise ValidationFailed(
            f"The price file has {len(exc.errors)} problem(s); nothing was imported.",
            fields={"rows": exc.errors},
        ) from exc
    gaps = price_csv.file_gaps(frame)
    symbols = sorted(frame["symbol"].unique())
    synthetic = DailyPrice.objects.filter(security__symbol__in=symbols, source="synthetic")
    replaced = dict(
        synthetic.values("security__symbol")
        .annotate(n=Count("id"))
        .values_list("security__symbol", "n")
        .order_by("security__symbol")
    )
    if dry_run:
        return PriceImport(rows=len(frame), gaps=gaps, replaced_synthetic=replaced)
    with transaction.atomic():
        ids = securities_ensure(symbols)
        if replaced:
            DailyPrice.objects.filter(security_id__in=ids.values(), source="synthetic").delete()
        frame = frame.assign(security_id=frame["symbol"].map(ids))
        rows = prices_upsert(frame, source="csv", fetched_at=timezone.now())
    return PriceImport(rows=rows, gaps=gaps, replaced_synthetic=replaced)


def prices_export_csv(
    *,
    out: TextSink,
    symbols: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> int:
    """Write cached prices in the import format, ordered by symbol and date."""
    queryset = DailyPrice.objects.order_by("security__symbol", "date")
    if symbols:
        queryset = queryset.filter(security__symbol__in=normalize_symbols(symbols))
    if start:
        queryset = queryset.filter(date__gte=start)
    if end:
        queryset = queryset.filter(date__lte=end)
    rows = queryset.values_list(
        "security__symbol", "date", "open", "high", "low", "close", "volume", "adjusted_close"
    )
    return price_csv.format_prices(rows.iterator(chunk_size=5000), out)
