"""Market-data writes and orchestration: fetch only what the cache lacks, walk the provider
fallback chain, write in bulk, and say where every number came from."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from marketdata import calendar, price_csv
from marketdata.models import BackfillProgress, DailyPrice, Security
from marketdata.providers import registry, universe
from marketdata.providers.base import (
    RATE_10Y,
    RATE_SHORT,
    MalformedPayload,
    MarketDataProvider,
    NoData,
    ProviderError,
    is_transient,
)
from marketdata.symbols import SymbolError, looks_like_occ, normalize_ticker, parse_occ
from marketdata.writes import prices_upsert
from sigmasight.exceptions import DependencyUnavailable, ValidationFailed

logger = logging.getLogger("sigmasight.market_data")

RATE_NAMES = {RATE_10Y: "US 10-year Treasury yield", RATE_SHORT: "US 13-week T-bill yield"}


class MarketDataPending(DependencyUnavailable):
    """A web request's prices are still on their way from the providers."""

    default_code = "market_data_pending"


@dataclass
class FetchReport:
    symbols: int = 0
    rows_written: int = 0
    provider_calls: int = 0
    rows_by_source: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # provider -> last error
    transient: dict[str, str] = field(default_factory=dict)  # provider -> last retryable error
    missing: list[str] = field(default_factory=list)  # symbols still lacking sessions: stale

    def count(self, source: str, rows: int) -> None:
        self.rows_written += rows
        self.rows_by_source[source] = self.rows_by_source.get(source, 0) + rows


@dataclass(frozen=True)
class CurrentPrice:
    price: Decimal
    date: date
    source: str
    stale: bool


def normalize_symbols(symbols: Iterable[str]) -> list[str]:
    """Upper-case, validate and de-duplicate symbols, keeping their order."""
    result: dict[str, None] = {}
    errors = []
    for raw in symbols:
        try:
            result[parse_occ(raw).symbol if looks_like_occ(raw) else normalize_ticker(raw)] = None
        except SymbolError as exc:
            errors.append(str(exc))
    if errors:
        raise ValidationFailed("Some symbols are not valid.", fields={"symbols": errors})
    return list(result)


def _new_security(symbol: str) -> Security:
    if looks_like_occ(symbol):
        occ = parse_occ(symbol)
        return Security(
            symbol=symbol, asset_type=Security.AssetType.OPTION, underlying=occ.root,
            expiration=occ.expiration, strike=occ.strike, option_type=occ.option_type,
            multiplier=100,
        )  # fmt: skip
    if symbol in RATE_NAMES:
        return Security(symbol=symbol, name=RATE_NAMES[symbol], asset_type=Security.AssetType.RATE)
    if symbol.startswith("^"):
        return Security(symbol=symbol, asset_type=Security.AssetType.INDEX)
    if symbol in universe.PROXIES:
        name = universe.ETF_NAMES.get(symbol, "")
        return Security(symbol=symbol, name=name, asset_type=Security.AssetType.ETF)
    return Security(symbol=symbol, asset_type=Security.AssetType.STOCK)


def securities_ensure(symbols: list[str]) -> dict[str, int]:
    """Create the securities that do not exist yet; return symbol -> id for all of them."""
    existing = dict(Security.objects.filter(symbol__in=symbols).values_list("symbol", "id"))
    missing = [s for s in symbols if s not in existing]
    if missing:
        Security.objects.bulk_create([_new_security(s) for s in missing], ignore_conflicts=True)
        existing = dict(Security.objects.filter(symbol__in=symbols).values_list("symbol", "id"))
    return existing


def _needed_sessions(
    ids: dict[str, int], sessions: list[date], start: date, end: date
) -> dict[str, list[date]]:
    """Sessions each symbol lacks in [start, end] (options: up to their expiration). One
    aggregate query: a symbol whose cached sessions are contiguous (the usual case: a history
    missing only the latest sessions) needs only its edges; the sessions of the few with gaps
    inside are read in a second query."""
    position = {d: i for i, d in enumerate(sessions)}
    stats = (
        DailyPrice.objects.filter(security_id__in=ids.values(), date__gte=start, date__lte=end)
        .values("security_id")
        .annotate(n=Count("id"), lo=Min("date"), hi=Max("date"))
        .values_list("security_id", "n", "lo", "hi")
    )
    span: dict[int, tuple[date, date]] = {}
    gappy: list[int] = []
    for security_id, n, lo, hi in stats:
        if lo in position and hi in position and n == position[hi] - position[lo] + 1:
            span[security_id] = (lo, hi)
        else:
            gappy.append(security_id)
    have: dict[int, set[date]] = defaultdict(set)
    if gappy:
        rows = DailyPrice.objects.filter(
            security_id__in=gappy, date__gte=start, date__lte=end
        ).values_list("security_id", "date")
        for security_id, day in rows:
            have[security_id].add(day)
    need = {}
    for symbol, security_id in ids.items():
        last = parse_occ(symbol).expiration if looks_like_occ(symbol) else end
        if security_id in span:
            lo, hi = span[security_id]
            missing = [d for d in sessions if d <= last and not lo <= d <= hi]
        else:
            missing = [d for d in sessions if d <= last and d not in have[security_id]]
        if missing:
            need[symbol] = missing
    return need


def _fetch(
    provider: MarketDataProvider, symbols: list[str], start: date, end: date
) -> pd.DataFrame:
    rates = [s for s in symbols if s in RATE_NAMES]
    others = [s for s in symbols if s not in RATE_NAMES]
    frames = []
    if others:
        frames.append(provider.daily_bars(others, start, end))
    for name in rates:
        series = provider.rate_series(name, start, end)
        frames.append(series.rename(columns={"value": "close"}).assign(symbol=name))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def prices_fetch_and_cache(
    *,
    symbols: Iterable[str],
    start: date,
    end: date,
    providers: list[MarketDataProvider] | None = None,
    now: datetime | None = None,
) -> FetchReport:
    """Fill the cache for every (symbol, session) in range that it lacks.

    Only missing sessions are asked for; symbols sharing the same missing range go to the
    provider in one call. A provider error moves the remaining symbols to the next provider in
    the chain; what no provider returns stays missing and is served stale from the cache.
    """
    plan = _fetch_plan(symbols, start, end, now)
    if plan.groups:
        chain = providers if providers is not None else registry.chain()
        _fetched_store(_fetch_groups(plan, chain), plan.report)
    return plan.report


@dataclass
class _FetchPlan:
    report: FetchReport
    ids: dict[str, int] = field(default_factory=dict)
    need: dict[str, list[date]] = field(default_factory=dict)
    groups: dict[tuple[date, date], list[str]] = field(default_factory=dict)


def _fetch_plan(symbols: Iterable[str], start: date, end: date, now: datetime | None) -> _FetchPlan:
    """What the cache lacks, grouped by missing range (database reads and security rows)."""
    symbols = normalize_symbols(symbols)
    plan = _FetchPlan(FetchReport(symbols=len(symbols)))
    end = min(end, calendar.last_completed_session(now))
    sessions = calendar.trading_days(start, end)
    if not symbols or not sessions:
        return plan
    plan.ids = securities_ensure(symbols)
    plan.need = _needed_sessions(plan.ids, sessions, start, end)
    groups: dict[tuple[date, date], list[str]] = defaultdict(list)
    for symbol, days in plan.need.items():
        groups[(days[0], days[-1])].append(symbol)
    plan.groups = dict(groups)
    return plan


def _fetch_groups(
    plan: _FetchPlan, chain: list[MarketDataProvider]
) -> list[tuple[str, pd.DataFrame]]:
    """Walk the provider chain for each group: network only, no database (so it can run on a
    thread the web request does not wait for beyond its deadline)."""
    fetched = []
    for (lo, hi), group in plan.groups.items():
        remaining = set(group)
        for provider in chain:
            if not remaining:
                break
            frame = _fetch_isolating(provider, sorted(remaining), lo, hi, plan.report)
            if frame.empty:
                continue
            frame = _only_needed(frame, remaining, plan.need, plan.ids)
            fetched.append((provider.name, frame))
            remaining -= set(frame["symbol"])
        plan.report.missing.extend(sorted(remaining))
    return fetched


def _fetched_store(fetched: list[tuple[str, pd.DataFrame]], report: FetchReport) -> None:
    for source, frame in fetched:
        report.count(source, prices_upsert(frame, source=source, fetched_at=timezone.now()))
    if report.missing:
        logger.warning("prices missing after every provider", extra={"symbols": report.missing})


# Web requests fetch what the cache lacks on these threads and wait at most their deadline.
_POOL_PREFIX = "web-price-fetch"
_WEB_FETCHES = ThreadPoolExecutor(max_workers=2, thread_name_prefix=_POOL_PREFIX)
_in_flight: dict[tuple, Future] = {}
_in_flight_lock = threading.Lock()


def prices_fetch_within(
    *, symbols: Iterable[str], start: date, end: date, deadline_s: float | None = None
) -> FetchReport:
    """`prices_fetch_and_cache` for a web request: a provider that hangs or times out never holds
    the request longer than `deadline_s` (SIGMASIGHT_WEB_PROVIDER_DEADLINE_S).

    The provider calls run on a small thread pool; the request waits up to the deadline and
    stores the prices itself. Past it, the request gets MarketDataPending (503, Retry-After) while
    the fetch finishes in the background and stores what it got on its own connection, so asking
    again shortly finds the prices cached. The same symbols and range asked again while a fetch
    is in flight wait on that fetch instead of starting another."""
    plan = _fetch_plan(symbols, start, end, None)
    if not plan.groups:
        return plan.report
    deadline = settings.SIGMASIGHT_WEB_PROVIDER_DEADLINE_S if deadline_s is None else deadline_s
    key = tuple(sorted((lo, hi, tuple(sorted(group))) for (lo, hi), group in plan.groups.items()))
    with _in_flight_lock:
        future = _in_flight.get(key)
        started = future is None
        if started:
            future = _WEB_FETCHES.submit(_fetch_groups, plan, registry.chain())
            _in_flight[key] = future
            future.add_done_callback(lambda _: _in_flight_forget(key))
    try:
        fetched = future.result(timeout=deadline)
    except FutureTimeout:
        if started:
            future.add_done_callback(lambda done: _store_late(done, plan.report))
        wanted = sorted({s for group in plan.groups.values() for s in group})
        logger.warning(
            "web request past its market-data deadline",
            extra={"symbols": wanted, "deadline_s": deadline},
        )
        raise MarketDataPending(
            f"Prices for {', '.join(wanted)} are still being fetched from the market-data "
            f"providers (no answer within {deadline:g} s); try again in a moment.",
            code="market_data_pending",
            fields={"symbols": wanted},
        ) from None
    # A request that joined a late fetch stores it too (idempotent upserts): it must not read
    # the cache before the background store has run.
    _fetched_store(fetched, plan.report)
    return plan.report


def _store_late(future: Future, report: FetchReport) -> None:
    """A fetch finished after its request gave up: store it here (this thread's connection)."""
    from django.db import connection

    try:
        if future.exception() is None:
            _fetched_store(future.result(), report)
    except Exception:
        logger.exception("storing a late market-data fetch failed")
    finally:
        # Done on the pool's thread: its connection is its own. (A fetch that finished as the
        # request gave up runs this on the request's thread, whose connection stays open.)
        if threading.current_thread().name.startswith(_POOL_PREFIX):
            connection.close()


def _in_flight_forget(key: tuple) -> None:
    with _in_flight_lock:
        _in_flight.pop(key, None)


def _fetch_isolating(
    provider: MarketDataProvider, symbols: list[str], start: date, end: date, report: FetchReport
) -> pd.DataFrame:
    """One call for the group; if it fails on one symbol's data (a malformed payload, no data),
    ask for each symbol alone so one bad symbol does not cost the others their prices. Any other
    failure (timeouts, rate limits, 5xx) says the provider itself is struggling: fall back."""
    try:
        report.provider_calls += 1
        return _fetch(provider, symbols, start, end)
    except (MalformedPayload, NoData) as exc:
        report.failures[provider.name] = str(exc)
        if len(symbols) == 1:
            logger.warning("price fetch failed, falling back", extra={"error": str(exc)})
            return pd.DataFrame()
    except (ProviderError, NotImplementedError) as exc:
        report.failures[provider.name] = str(exc)
        if is_transient(exc):
            report.transient[provider.name] = str(exc)
        logger.warning("price fetch failed, falling back", extra={"error": str(exc)})
        return pd.DataFrame()
    frames = [_fetch_isolating(provider, [symbol], start, end, report) for symbol in symbols]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _only_needed(
    frame: pd.DataFrame, symbols: set[str], need: dict[str, list[date]], ids: dict[str, int]
) -> pd.DataFrame:
    """Rows for requested symbols on the sessions still missing: never a non-session."""
    wanted = pd.DataFrame([(s, d) for s in symbols for d in need[s]], columns=["symbol", "date"])
    frame = frame.merge(wanted, on=["symbol", "date"], how="inner")
    frame = frame.drop_duplicates(["symbol", "date"], keep="last")
    return frame.assign(security_id=frame["symbol"].map(ids))


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
            chain = provider.option_chain(underlying, expiration, as_of)
        except (ProviderError, NotImplementedError) as exc:
            report.failures[provider.name] = str(exc)
            continue
        finally:
            report.provider_calls += 1
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


def backfill_prices(
    *,
    symbols: Iterable[str],
    days: int,
    end: date | None = None,
    providers: list[MarketDataProvider] | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 50,
) -> FetchReport:
    """Backfill `days` sessions for every symbol, a chunk at a time. Progress is recorded per
    symbol and range, so a run that was interrupted skips what is already done."""
    symbols = normalize_symbols(symbols)
    end = end or calendar.last_completed_session()
    start = calendar.sessions_back(end, days)[0]
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
        report = prices_fetch_and_cache(symbols=batch, start=start, end=end, providers=providers)
        _record_progress(batch, start, end, report)
        total.rows_written += report.rows_written
        total.provider_calls += report.provider_calls
        for source, rows in report.rows_by_source.items():
            total.rows_by_source[source] = total.rows_by_source.get(source, 0) + rows
        total.failures.update(report.failures)
        total.missing.extend(report.missing)
        if on_progress:
            on_progress(len(batch))
    return total


def _record_progress(batch: list[str], start: date, end: date, report: FetchReport) -> None:
    source = ",".join(sorted(report.rows_by_source))
    error = "; ".join(f"{k}: {v}" for k, v in report.failures.items())
    rows = [
        BackfillProgress(
            symbol=symbol, start=start, end=end,
            status=BackfillProgress.Status.FAILED if symbol in report.missing
            else BackfillProgress.Status.DONE,
            source=source, error=error if symbol in report.missing else "",
        )
        for symbol in batch
    ]  # fmt: skip
    BackfillProgress.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["symbol", "start", "end"],
        update_fields=["status", "source", "error", "updated_at"],
    )


def prices_import_csv(*, stream: IO[bytes] | IO[str], dry_run: bool = False) -> int:
    """Validate a whole price file and write it in one transaction (source "csv"), or raise
    ValidationFailed listing every bad row and write nothing. Returns the rows accepted."""
    try:
        frame = price_csv.parse_prices(stream)
    except price_csv.PriceFileError as exc:
        raise ValidationFailed(
            f"The price file has {len(exc.errors)} problem(s); nothing was imported.",
            fields={"rows": exc.errors},
        ) from exc
    if dry_run:
        return len(frame)
    with transaction.atomic():
        ids = securities_ensure(sorted(frame["symbol"].unique()))
        frame = frame.assign(security_id=frame["symbol"].map(ids))
        return prices_upsert(frame, source="csv", fetched_at=timezone.now())


def prices_export_csv(
    *, out: IO[str], symbols: Iterable[str] | None = None, start: date | None = None,
    end: date | None = None,
) -> int:  # fmt: skip
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
