"""Filling the price cache: ask the providers only for the (symbol, session) pairs the cache
lacks, walk the fallback chain, store each answer as it arrives and report what is still missing.

Provenance: the synthetic market fills only series it owns. A symbol with any cached close from a
real source (a CSV import, Polygon, yfinance) is never asked of the synthetic provider, whatever
the range: a session missing from a real series stays missing (valuation carries the last close
forward, flagged stale) rather than taking a number from another market.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, cast

import pandas as pd
from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from marketdata import calendar
from marketdata.models import DailyPrice, Security
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
from sigmasight.metrics import provider_call

logger = logging.getLogger("sigmasight.market_data")

RATE_NAMES = {RATE_10Y: "US 10-year Treasury yield", RATE_SHORT: "US 13-week T-bill yield"}
SYNTHETIC = "synthetic"  # the synthetic provider's name and the `source` of its rows


class MarketDataPending(DependencyUnavailable):
    """A web request's prices are still on their way from the providers."""

    default_code = "market_data_pending"


@dataclass
class FetchReport:
    """What a fetch wrote and what is still not cached after every provider was asked.

    gaps: symbol -> the sessions in the requested range it still lacks, ascending (options up to
        their expiration; for a symbol with real prices, not the sessions before its first real
        close). Every symbol still short of a session is here.
    errors: symbol -> the last error a provider raised for it (timeout, rate limit, malformed
        payload), for symbols in `gaps` because of that; a symbol no provider has (no data, the
        csv source, the synthetic market refusing a real series) has none.
    """

    symbols: int = 0
    rows_written: int = 0
    provider_calls: int = 0
    rows_by_source: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # provider -> last error
    transient: dict[str, str] = field(default_factory=dict)  # provider -> last retryable error
    missing: list[str] = field(default_factory=list)  # in gaps, no provider returned a row: stale
    gaps: dict[str, list[date]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def count(self, source: str, rows: int) -> None:
        self.rows_written += rows
        self.rows_by_source[source] = self.rows_by_source.get(source, 0) + rows

    def merge(self, other: FetchReport) -> None:
        """Add another fetch of other symbols (a backfill's next chunk)."""
        self.provider_calls += other.provider_calls
        for source, rows in other.rows_by_source.items():
            self.count(source, rows)
        self.failures.update(other.failures)
        self.transient.update(other.transient)
        self.missing.extend(other.missing)
        self.gaps.update(other.gaps)
        self.errors.update(other.errors)


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
            symbol=symbol,
            asset_type=Security.AssetType.OPTION,
            underlying=occ.root,
            expiration=occ.expiration,
            strike=occ.strike,
            option_type=occ.option_type,
            multiplier=100,
        )
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


def _real_series_start(ids: dict[str, int], symbols: Iterable[str]) -> dict[str, date]:
    """The first cached close from a real source (anything but synthetic) of each of `symbols`
    that has one, over its whole history whatever range is asked: one aggregate query."""
    by_id = {ids[s]: s for s in symbols}
    rows = (
        DailyPrice.objects.filter(security_id__in=by_id)
        .exclude(source=SYNTHETIC)
        .values("security_id")
        .annotate(first=Min("date"))
        .values_list("security_id", "first")
    )
    return {by_id[security_id]: first for security_id, first in rows}


def real_series(symbols: Iterable[str]) -> set[str]:
    """Which of `symbols` have a cached close from a real source (one query)."""
    return set(
        DailyPrice.objects.filter(security__symbol__in=list(symbols))
        .exclude(source=SYNTHETIC)
        .values_list("security__symbol", flat=True)
        .distinct()
    )


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
    the chain; what no provider returns stays missing (`gaps`) and is served stale from the
    cache. Each provider's answer is stored as it arrives, so rows fetched before a later group
    fails (or the process is stopped) are kept.
    """
    plan = _fetch_plan(symbols, start, end, now)
    if plan.groups:
        chain = providers if providers is not None else registry.chain()
        _fetch_groups(plan, chain, store=partial(_store, plan))
        _finish(plan)
    return plan.report


class ProviderAnswer(NamedTuple):
    """What one provider answered for one group of symbols (bars, `BAR_COLUMNS`)."""

    source: str
    frame: pd.DataFrame


@dataclass
class _FetchPlan:
    report: FetchReport
    ids: dict[str, int] = field(default_factory=dict)
    need: dict[str, list[date]] = field(default_factory=dict)
    groups: dict[tuple[date, date], list[str]] = field(default_factory=dict)
    # Symbols with a cached real close -> the first one: never synthesized, and no gap before it.
    real_since: dict[str, date] = field(default_factory=dict)
    raised: dict[str, str] = field(default_factory=dict)  # symbol -> last provider error for it
    stored: dict[str, set[date]] = field(default_factory=lambda: defaultdict(set))


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
    if plan.need:
        plan.real_since = _real_series_start(plan.ids, plan.need)
    groups: dict[tuple[date, date], list[str]] = defaultdict(list)
    for symbol, days in plan.need.items():
        groups[(days[0], days[-1])].append(symbol)
    plan.groups = dict(groups)
    return plan


Store = Callable[[str, pd.DataFrame], None]


def _fetch_groups(
    plan: _FetchPlan, chain: list[MarketDataProvider], store: Store | None = None
) -> list[ProviderAnswer]:
    """Walk the provider chain for each group. With `store`, each answer is stored as it arrives
    and nothing is returned; without, this is network only, no database (so it can run on a
    thread the web request does not wait for beyond its deadline): the answers are returned."""
    fetched: list[ProviderAnswer] = []
    for (lo, hi), group in plan.groups.items():
        remaining = set(group)
        for provider in chain:
            if not remaining:
                break
            asked = remaining
            if provider.name == SYNTHETIC:
                asked = remaining - plan.real_since.keys()
                if not asked:
                    continue
            frame = _fetch_isolating(provider, sorted(asked), lo, hi, plan)
            if frame.empty:
                continue
            frame = _only_needed(frame, asked, plan.need, plan.ids)
            if frame.empty:
                continue
            if store is None:
                fetched.append(ProviderAnswer(source=provider.name, frame=frame))
            else:
                store(provider.name, frame)
            remaining -= set(frame["symbol"])
    return fetched


def _store(plan: _FetchPlan, source: str, frame: pd.DataFrame) -> None:
    plan.report.count(source, prices_upsert(frame, source=source, fetched_at=timezone.now()))
    for symbol, days in frame.groupby("symbol")["date"]:
        plan.stored[symbol].update(days)
        if source != SYNTHETIC:
            first = min(days)
            plan.real_since[symbol] = min(plan.real_since.get(symbol, first), first)


def _finish(plan: _FetchPlan) -> None:
    """What is still missing after every provider was asked: gaps, missing and errors."""
    report = plan.report
    for symbol in sorted(plan.need):
        stored = plan.stored.get(symbol, set())
        since = plan.real_since.get(symbol)
        lacking = [
            d for d in plan.need[symbol] if d not in stored and (since is None or d >= since)
        ]
        if not lacking:
            continue
        report.gaps[symbol] = lacking
        if not stored:
            report.missing.append(symbol)
        if symbol in plan.raised:
            report.errors[symbol] = plan.raised[symbol]
    if report.gaps:
        logger.warning(
            "prices missing after every provider",
            extra={"symbols": sorted(report.gaps), "errors": report.errors},
        )


def _fetched_store(fetched: list[ProviderAnswer], plan: _FetchPlan) -> None:
    for answer in fetched:
        _store(plan, answer.source, answer.frame)
    _finish(plan)


# Web requests fetch what the cache lacks on these threads and wait at most their deadline.
_POOL_PREFIX = "web-price-fetch"
_WEB_FETCHES = ThreadPoolExecutor(max_workers=2, thread_name_prefix=_POOL_PREFIX)

if TYPE_CHECKING:

    class _Fetch(Future[list[ProviderAnswer]]):
        """An in-flight fetch as the type checker sees it: the pool's Future, with the store
        state `prices_fetch_within` sets on it (see `_store_once`)."""

        store_lock: threading.Lock
        stored: bool


_in_flight: dict[tuple, _Fetch] = {}
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
    chain = registry.chain()
    if not chain:  # the csv source: nothing to wait for
        _finish(plan)
        return plan.report
    deadline = settings.SIGMASIGHT_WEB_PROVIDER_DEADLINE_S if deadline_s is None else deadline_s
    key = tuple(sorted((lo, hi, tuple(sorted(group))) for (lo, hi), group in plan.groups.items()))
    with _in_flight_lock:
        future = _in_flight.get(key)
        started = future is None
        if future is None:
            future = cast("_Fetch", _WEB_FETCHES.submit(_fetch_groups, plan, chain))
            future.store_lock, future.stored = threading.Lock(), False  # see _store_once
            _in_flight[key] = future
    if started:
        # Outside the lock: a fetch already done runs the callback here, at once, and the
        # callback takes the lock (inside it, that deadlocked the request).
        future.add_done_callback(lambda _: _in_flight_forget(key))
    try:
        fetched = future.result(timeout=deadline)
    except FutureTimeout:
        if started:
            future.add_done_callback(lambda done: _store_late(cast("_Fetch", done), plan))
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
    # A request that joined a late fetch must not read the cache before it is stored.
    _store_once(future, fetched, plan)
    return plan.report


def _store_once(future: _Fetch, fetched: list[ProviderAnswer], plan: _FetchPlan) -> None:
    """One in-flight fetch is written once, by whoever has its prices first (a request that
    waited, or the background store of a request that gave up); the other waits until that
    write has committed. So a request never reads the cache mid-write, and two threads never
    write the same rows at once (SQLite's shared cache refuses that: "table is locked")."""
    with future.store_lock:
        if not future.stored:
            _fetched_store(fetched, plan)
            future.stored = True


def _store_late(future: _Fetch, plan: _FetchPlan) -> None:
    """A fetch finished after its request gave up: store it here (this thread's connection)."""
    from django.db import connection

    try:
        if future.exception() is None:
            _store_once(future, future.result(), plan)
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
    provider: MarketDataProvider, symbols: list[str], start: date, end: date, plan: _FetchPlan
) -> pd.DataFrame:
    """One call for the group; if it fails on one symbol's data (a malformed payload, no data),
    ask for each symbol alone so one bad symbol does not cost the others their prices. Any other
    failure (timeouts, rate limits, 5xx) says the provider itself is struggling: fall back.
    Errors that say something went wrong (not that the source has nothing) are kept per symbol."""
    report = plan.report
    try:
        report.provider_calls += 1
        with provider_call(provider.name, "prices"):
            return _fetch(provider, symbols, start, end)
    except (MalformedPayload, NoData) as exc:
        report.failures[provider.name] = str(exc)
        if len(symbols) == 1:
            if isinstance(exc, MalformedPayload):
                plan.raised[symbols[0]] = str(exc)
            logger.warning("price fetch failed, falling back", extra={"error": str(exc)})
            return pd.DataFrame()
    except (ProviderError, NotImplementedError) as exc:
        report.failures[provider.name] = str(exc)
        if is_transient(exc):
            report.transient[provider.name] = str(exc)
            plan.raised.update(dict.fromkeys(symbols, str(exc)))
        logger.warning("price fetch failed, falling back", extra={"error": str(exc)})
        return pd.DataFrame()
    frames = [_fetch_isolating(provider, [symbol], start, end, plan) for symbol in symbols]
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
