"""The demo: three believable books for three demo users and a staff login, priced and
risk-computed, so a fresh clone serves a full product offline (`manage.py seed_demo`).

The books are data (`BOOKS`): stock legs are weights of a target NAV, not share counts, and
option legs are a moneyness and the n-th standard monthly expiration after the demo date, so the
same definitions fit the synthetic market and Polygon's real prices. Share counts, listed strikes
(on the exchange grid: $1 under $50, $2.50 under $150, $5 above), entry prices and the cash that
makes the NAV come from the cached closes once the prices are in. Positions go through
`position_create`, so they are validated exactly like user input.

`demo_seed` is idempotent: users, books, prices and analytics are each made only when missing
(a book is never changed once it exists), so a second run writes no rows; `reset=True` deletes
the demo users (and with them everything they own) and rebuilds. The demo date is the last
completed NYSE session. It orchestrates the whole stack (books, prices, a dividend of JPM and
XOM five sessions back (`demo_actions`), the daily batch of every app's declared jobs, history),
so it lives in the top app, above everything it uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction

from analytics.attribution import generate_historical_attribution
from analytics.batch import run_daily_batch
from analytics.models import (
    FactorDefinition,
    MarketRiskScenario,
    PortfolioFactorExposure,
    PortfolioSnapshot,
    RiskMetricSnapshot,
)
from analytics.snapshots import generate_historical_snapshots
from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.providers.registry import current_source
from marketdata.providers.synthetic import monthly_expirations
from marketdata.services import prices_fetch_and_cache
from marketdata.symbols import build_occ
from modeling.demo_actions import demo_dividends
from modeling.demo_limits import demo_limits
from portfolios import services
from portfolios.models import Portfolio, Position
from sigmasight.accounts.models import User
from sigmasight.api.caching import everything_changed
from sigmasight.exceptions import ValidationFailed
from sigmasight.exports import TextSink
from stress.models import StressTestResult

logger = logging.getLogger("sigmasight.batch")

ADMIN_EMAIL = "admin@sigmasight.local"
PRICE_SESSIONS = 400  # history cached for every symbol the demo needs
HISTORY_SESSIONS = 90  # sessions of rebuilt snapshots behind the exposures and performance series
CENT = Decimal("0.01")


@dataclass(frozen=True)
class StockLeg:
    symbol: str
    weight: float  # signed share of the book's NAV at the demo date (negative = short)
    tags: tuple[str, ...] = ()
    round_lot: bool = False  # whole 100s of shares: options are written or bought against them


@dataclass(frozen=True)
class OptionLeg:
    underlying: str
    option_type: str  # "C" or "P"
    moneyness: float  # strike / the underlying's close on the demo date
    expiry: int  # the n-th monthly expiration after the demo date (1 = the next one)
    tags: tuple[str, ...] = ()
    notional: float = 0.0  # signed share of NAV in underlying notional (contracts x 100 x spot)
    per_round_lot: int = 0  # or: contracts per 100 shares of the book's stock leg (+1 / -1)


@dataclass(frozen=True)
class UserStrategy:
    kind: str  # pairs or custom
    name: str
    symbols: tuple[str, ...]  # stock legs of the book


@dataclass(frozen=True)
class DemoBook:
    key: str
    email: str
    full_name: str
    portfolio: str
    description: str
    nav: Decimal
    tags: dict[str, tuple[str, str]]  # name -> (colour, description)
    stocks: tuple[StockLeg, ...]
    options: tuple[OptionLeg, ...] = ()
    strategies: tuple[UserStrategy, ...] = ()


def _s(symbol: str, weight: float, *tags: str, round_lot: bool = False) -> StockLeg:
    return StockLeg(symbol, weight, tags, round_lot)


GROWTH = DemoBook(
    key="growth",
    email="demo_growth@sigmasight.local",
    full_name="Grace Growth (demo)",
    portfolio="Growth Equity Book",
    description="Technology-heavy long book with call overlays and a few funding shorts.",
    nav=Decimal("1500000"),
    tags={
        "core": ("#4A90D9", "Largest, highest-conviction holdings"),
        "ai": ("#8E44AD", "AI infrastructure and applications"),
        "semis": ("#16A085", "Semiconductors"),
        "software": ("#2980B9", "Software and cloud"),
        "high-beta": ("#E67E22", "Momentum names sized small"),
        "consumer-internet": ("#D35400", "Platforms and marketplaces"),
        "upside-calls": ("#27AE60", "Long calls for convex upside"),
        "funding-short": ("#C0392B", "Shorts that fund the long book"),
    },
    stocks=(
        _s("AAPL", 0.08, "core"),
        _s("MSFT", 0.08, "core", "software", "ai"),
        _s("NVDA", 0.07, "core", "ai", "semis"),
        _s("AMD", 0.04, "ai", "semis", "high-beta"),
        _s("AVGO", 0.045, "ai", "semis"),
        _s("CRM", 0.035, "software"),
        _s("ADBE", 0.03, "software"),
        _s("SHOP", 0.03, "software", "high-beta"),
        _s("SNOW", 0.025, "software", "high-beta"),
        _s("PLTR", 0.025, "ai", "software", "high-beta"),
        _s("GOOGL", 0.065, "core", "ai"),
        _s("META", 0.06, "core", "ai", "consumer-internet"),
        _s("NFLX", 0.035, "consumer-internet"),
        _s("AMZN", 0.065, "core", "consumer-internet"),
        _s("TSLA", 0.03, "high-beta"),
        _s("UBER", 0.03, "consumer-internet"),
        _s("LLY", 0.04, "core"),
        _s("INTC", -0.035, "funding-short", "semis"),
        _s("CSCO", -0.03, "funding-short"),
        _s("DIS", -0.025, "funding-short"),
    ),
    options=(
        OptionLeg("NVDA", "C", 1.10, 3, ("upside-calls", "ai"), notional=0.06),
        OptionLeg("AAPL", "C", 1.05, 2, ("upside-calls",), notional=0.05),
        OptionLeg("META", "C", 1.08, 4, ("upside-calls", "ai"), notional=0.04),
        OptionLeg("AMZN", "C", 1.05, 5, ("upside-calls",), notional=0.04),
    ),
    strategies=(UserStrategy("custom", "AI infrastructure basket", ("NVDA", "AMD", "AVGO")),),
)

VALUE = DemoBook(
    key="value",
    email="demo_value@sigmasight.local",
    full_name="Victor Value (demo)",
    portfolio="Value Income Book",
    description="Financials, energy and industrials, with covered calls and protective puts.",
    nav=Decimal("2000000"),
    tags={
        "financials": ("#2C3E50", "Banks, brokers and insurers"),
        "energy": ("#F39C12", "Integrated oil, E&P and services"),
        "industrials": ("#7F8C8D", "Machinery, rails and conglomerates"),
        "dividend": ("#27AE60", "Dividend yield above the market's"),
        "income": ("#16A085", "Calls written against the stock"),
        "hedge": ("#C0392B", "Puts protecting a holding"),
        "defensive": ("#95A5A6", "Low-beta ballast"),
    },
    stocks=(
        _s("JPM", 0.065, "financials", "dividend", round_lot=True),
        _s("BAC", 0.05, "financials", round_lot=True),
        _s("WFC", 0.04, "financials"),
        _s("C", 0.035, "financials", "dividend"),
        _s("GS", 0.045, "financials"),
        _s("MS", 0.035, "financials", "dividend"),
        _s("BRK.B", 0.06, "financials", "defensive"),
        _s("XOM", 0.065, "energy", "dividend", round_lot=True),
        _s("CVX", 0.05, "energy", "dividend"),
        _s("COP", 0.04, "energy"),
        _s("SLB", 0.03, "energy"),
        _s("CAT", 0.05, "industrials", round_lot=True),
        _s("DE", 0.04, "industrials"),
        _s("HON", 0.035, "industrials", "dividend"),
        _s("GE", 0.035, "industrials"),
        _s("UNP", 0.035, "industrials", "dividend"),
        _s("PFE", 0.03, "defensive", "dividend"),
        _s("VZ", 0.03, "defensive", "dividend"),
    ),
    options=(
        OptionLeg("JPM", "C", 1.05, 2, ("income",), per_round_lot=-1),
        OptionLeg("XOM", "C", 1.06, 2, ("income",), per_round_lot=-1),
        OptionLeg("CAT", "P", 0.90, 3, ("hedge",), per_round_lot=1),
        OptionLeg("BAC", "P", 0.92, 4, ("hedge",), per_round_lot=1),
    ),
    strategies=(UserStrategy("custom", "Big-bank core", ("JPM", "BAC", "WFC", "C")),),
)

BALANCED = DemoBook(
    key="balanced",
    email="demo_balanced@sigmasight.local",
    full_name="Blair Balanced (demo)",
    portfolio="Balanced Multi-Asset Book",
    description="ETF core with defensive stocks, a collar, a staples pairs trade and some shorts.",
    nav=Decimal("1200000"),
    tags={
        "core-etf": ("#4A90D9", "Index exposure"),
        "rates": ("#8E44AD", "Duration and rate-sensitive holdings"),
        "defensive": ("#95A5A6", "Staples, healthcare and utilities"),
        "quality": ("#27AE60", "Wide-moat compounders"),
        "collar": ("#16A085", "Stock held with a put bought and a call written"),
        "pairs": ("#2980B9", "Market-neutral pair"),
        "short": ("#C0392B", "Single-name shorts"),
        "real-assets": ("#F39C12", "Gold, materials and real estate"),
    },
    stocks=(
        _s("SPY", 0.10, "core-etf"),
        _s("QQQ", 0.06, "core-etf"),
        _s("IWM", 0.04, "core-etf"),
        _s("TLT", 0.06, "rates"),
        _s("XLU", 0.03, "rates", "defensive"),
        _s("GLD", 0.03, "real-assets"),
        _s("KO", 0.04, "pairs", "defensive"),
        _s("PEP", -0.04, "pairs"),
        _s("PG", 0.035, "defensive", "quality"),
        _s("WMT", 0.035, "defensive"),
        _s("JNJ", 0.035, "defensive", "quality"),
        _s("UNH", 0.035, "quality"),
        _s("HD", 0.045, "collar", "quality", round_lot=True),
        _s("MCD", 0.03, "quality"),
        _s("NEE", 0.03, "rates", "defensive"),
        _s("V", 0.035, "quality"),
        _s("MA", 0.03, "quality"),
        _s("LIN", 0.03, "real-assets", "quality"),
        _s("AMT", 0.025, "rates", "real-assets"),
        _s("NKE", -0.02, "short"),
        _s("CCL", -0.015, "short"),
        _s("PYPL", -0.02, "short"),
    ),
    options=(
        OptionLeg("HD", "P", 0.92, 3, ("collar",), per_round_lot=1),
        OptionLeg("HD", "C", 1.08, 3, ("collar",), per_round_lot=-1),
    ),
    strategies=(UserStrategy("pairs", "Staples pair: long KO / short PEP", ("KO", "PEP")),),
)

BOOKS: tuple[DemoBook, ...] = (GROWTH, VALUE, BALANCED)
DEMO_EMAILS: tuple[str, ...] = tuple(book.email for book in BOOKS)


@dataclass
class BookReport:
    key: str
    email: str
    portfolio_id: int
    portfolio: str
    positions: int
    created: bool


@dataclass
class SeedReport:
    as_of: date
    source: str
    reset: bool
    admin: str = ADMIN_EMAIL
    books: list[BookReport] = field(default_factory=list)
    price_rows: int = 0
    missing_prices: list[str] = field(default_factory=list)
    batch: list[dict] = field(default_factory=list)  # {name, status, duration_s}; empty: skipped
    snapshots: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def demo_password() -> str:
    return settings.SIGMASIGHT_DEMO_PASSWORD


def demo_users_exist() -> bool:
    return User.objects.filter(email__in=DEMO_EMAILS).exists()


def demo_symbols() -> list[str]:
    """Every ticker the books hold or write options on."""
    held = {leg.symbol for book in BOOKS for leg in book.stocks}
    return sorted(held | {leg.underlying for book in BOOKS for leg in book.options})


def _strike(spot: Decimal, moneyness: float) -> Decimal:
    """The listed strike nearest spot x moneyness on the usual exchange grid."""
    step = Decimal("1") if spot < 50 else Decimal("2.5") if spot < 150 else Decimal("5")
    target = spot * Decimal(str(moneyness))
    return max(step, (target / step).quantize(Decimal("1"), ROUND_HALF_UP) * step)


def _closes(symbols: list[str], start: date, end: date) -> dict[str, dict[date, Decimal]]:
    """Cached closes by symbol and session (one query)."""
    closes: dict[str, dict[date, Decimal]] = {s: {} for s in symbols}
    rows = DailyPrice.objects.filter(
        security__symbol__in=symbols, date__gte=start, date__lte=end
    ).values_list("security__symbol", "date", "close")
    for symbol, day, close in rows:
        closes[symbol][day] = close
    return closes


def _close_on_or_before(series: dict[date, Decimal], day: date) -> Decimal | None:
    known = [d for d in series if d <= day]
    return series[max(known)] if known else None


class _Contract(NamedTuple):
    """An option leg made concrete: its leg and the signed number of contracts."""

    leg: OptionLeg
    quantity: int


@dataclass(frozen=True)
class _Lot:
    """A leg made concrete: what position_create receives, plus its tags and value today."""

    data: dict
    tags: tuple[str, ...]
    exposure: Decimal  # signed, at the demo date's close


class _Seeder:
    """One run of the demo seed: prices, books, then analytics, each only where missing."""

    def __init__(self, *, reset: bool, out: Callable[[str], None]) -> None:
        self.as_of = calendar.last_completed_session()
        self.sessions = calendar.sessions_back(self.as_of, PRICE_SESSIONS)
        self.reset = reset
        self.say = out
        self.report = SeedReport(as_of=self.as_of, source=current_source(), reset=reset)

    def _timed(self, name: str, started: float) -> None:
        self.report.seconds[name] = round(time.perf_counter() - started, 2)

    def run(self) -> SeedReport:
        begin = time.perf_counter()
        self.say(f"Demo date {self.as_of} (last NYSE session), market data: {self.report.source}.")
        for name, step in (
            ("accounts", self._accounts),
            ("prices", lambda: self._prices(self._market_symbols())),
            ("books", lambda: self.report.books.extend(self._book(book) for book in BOOKS)),
        ):
            started = time.perf_counter()
            step()
            self._timed(name, started)
        ids = [b.portfolio_id for b in self.report.books]
        if self.report.source == "synthetic":  # a real source's actions come with the batch
            self.say(f"Dividends (JPM, XOM): applied to {demo_dividends(ids, self.sessions)}.")
        self.say(demo_limits(ids, self.as_of))
        self._analytics(ids)
        everything_changed()  # books deleted and rebuilt (their ids may come back on SQLite)
        self.report.seconds["total"] = round(time.perf_counter() - begin, 2)
        return self.report

    # Accounts ------------------------------------------------------------------------------------
    def _accounts(self) -> None:
        password = demo_password()
        # The staff login opens the admin: its password must pass the project's own rules
        # (SIGMASIGHT_DEMO_PASSWORD set to something weaker is refused before anything changes).
        try:
            password_validation.validate_password(password, user=User(email=ADMIN_EMAIL))
        except ValidationError as exc:
            raise ValidationFailed(
                "SIGMASIGHT_DEMO_PASSWORD does not pass the password rules: "
                + " ".join(exc.messages),
                fields={"SIGMASIGHT_DEMO_PASSWORD": exc.messages},
            ) from exc
        with transaction.atomic():
            if self.reset:
                deleted, _ = User.objects.filter(email__in=DEMO_EMAILS).delete()
                self.say(
                    f"Reset: deleted the demo users and everything they owned ({deleted} rows)."
                )
            admin = User.objects.filter(email=ADMIN_EMAIL).first()
            if admin is None:
                User.objects.create_superuser(ADMIN_EMAIL, password, full_name="Demo administrator")
            elif not (admin.is_staff and admin.is_superuser and admin.check_password(password)):
                admin.is_staff = admin.is_superuser = admin.is_active = True
                admin.set_password(password)
                admin.save()
            for book in BOOKS:
                user = User.objects.filter(email=book.email).first()
                if user is None:
                    User.objects.create_user(book.email, password, full_name=book.full_name)
                elif not user.check_password(password):
                    user.set_password(password)
                    user.save(update_fields=["password"])

    # Prices ----------------------------------------------------------------------------------
    def _market_symbols(self) -> list[str]:
        proxies = set(
            FactorDefinition.objects.exclude(etf_proxy="").values_list("etf_proxy", flat=True)
        )
        return sorted(set(demo_symbols()) | proxies | {RATE_10Y, RATE_SHORT})

    def _prices(self, symbols: list[str]) -> None:
        report = prices_fetch_and_cache(symbols=symbols, start=self.sessions[0], end=self.as_of)
        self.report.price_rows += report.rows_written
        self.report.missing_prices.extend(report.missing)
        self.say(
            f"Prices: {len(symbols)} symbols x {PRICE_SESSIONS} sessions, "
            f"{report.rows_written:,} rows written"
            + (f", no price for {', '.join(report.missing)}" if report.missing else "")
            + "."
        )

    # Books -----------------------------------------------------------------------------------
    def _book(self, book: DemoBook) -> BookReport:
        owner = User.objects.get(email=book.email)
        portfolio = Portfolio.objects.filter(owner=owner, name=book.portfolio).first()
        if portfolio is not None and portfolio.positions.exists():
            count = portfolio.positions.filter(closed_at__isnull=True).count()
            return BookReport(book.key, book.email, portfolio.pk, book.portfolio, count, False)
        lots = self._lots(book)
        with transaction.atomic():
            if portfolio is None:
                portfolio = Portfolio.objects.create(
                    owner=owner, name=book.portfolio, description=book.description
                )
            portfolio.cash = (book.nav - sum(lot.exposure for lot in lots)).quantize(CENT)
            portfolio.save(update_fields=["cash", "updated_at"])
            tag_ids = {}
            for name, (color, description) in book.tags.items():
                tag = services.tag_create(
                    owner=owner, name=name, color=color, description=description
                )
                tag_ids[name] = tag.pk
            positions = {}
            for lot in lots:
                position = services.position_create(
                    portfolio=portfolio, data=lot.data, tag_ids=[tag_ids[t] for t in lot.tags]
                )
                positions[position.symbol] = position.pk
            for strategy in book.strategies:
                services.strategy_create(
                    portfolio=portfolio,
                    name=strategy.name,
                    kind=strategy.kind,
                    position_ids=[positions[s] for s in strategy.symbols],
                )
        self.say(
            f"{book.email}: '{book.portfolio}', {len(lots)} positions, cash {portfolio.cash:,}."
        )
        return BookReport(book.key, book.email, portfolio.pk, book.portfolio, len(lots), True)

    def _entry(self, index: int, *, option: bool) -> date:
        """A spread of entry dates: stocks held 40 to 340 sessions, options 10 to 50."""
        back = 10 + (index * 11) % 40 if option else 40 + (index * 53) % 300
        return self.sessions[-1 - back]

    def _lots(self, book: DemoBook) -> list[_Lot]:
        symbols = [leg.symbol for leg in book.stocks]
        closes = _closes(symbols, self.sessions[0], self.as_of)
        lots: list[_Lot] = []
        shares: dict[str, int] = {}
        for i, leg in enumerate(book.stocks):
            spot = closes[leg.symbol].get(self.as_of)
            if spot is None:
                self.say(f"  skipped {leg.symbol}: no close on {self.as_of}.")
                continue
            count = max(1, round(abs(leg.weight) * float(book.nav) / float(spot)))
            if leg.round_lot:
                count = max(100, round(count, -2))
            quantity = count if leg.weight > 0 else -count
            shares[leg.symbol] = quantity
            entered = self._entry(i, option=False)
            lots.append(
                self._lot(leg.symbol, quantity, entered, closes[leg.symbol], spot, leg.tags, 1)
            )
        contracts = self._contracts(book, closes, shares)
        if contracts:
            self._prices(sorted(contracts))
            option_closes = _closes(sorted(contracts), self.sessions[0], self.as_of)
        for i, (symbol, contract) in enumerate(contracts.items()):
            series = option_closes[symbol]
            entered = self._entry(i, option=True)
            price = series.get(self.as_of, Decimal("0"))
            lots.append(
                self._lot(symbol, contract.quantity, entered, series, price, contract.leg.tags, 100)
            )
        return lots

    def _contracts(
        self, book: DemoBook, closes: dict[str, dict[date, Decimal]], shares: dict[str, int]
    ) -> dict[str, _Contract]:
        """OCC symbol -> the contract of each of the book's option legs."""
        expirations = monthly_expirations(
            self.as_of, max((o.expiry for o in book.options), default=1)
        )
        result: dict[str, _Contract] = {}
        for leg in book.options:
            spot = closes.get(leg.underlying, {}).get(self.as_of)
            if spot is None:
                self.say(f"  skipped the {leg.underlying} option: no close on {self.as_of}.")
                continue
            if leg.per_round_lot:
                quantity = leg.per_round_lot * abs(shares.get(leg.underlying, 0)) // 100
            else:
                size = max(1, round(abs(leg.notional) * float(book.nav) / (float(spot) * 100)))
                quantity = size if leg.notional > 0 else -size
            if quantity == 0:
                continue
            strike = _strike(spot, leg.moneyness)
            symbol = build_occ(leg.underlying, expirations[leg.expiry - 1], leg.option_type, strike)
            result[symbol] = _Contract(leg=leg, quantity=quantity)
        return result

    def _lot(
        self,
        symbol: str,
        quantity: int,
        entered: date,
        series: dict[date, Decimal],
        price: Decimal,
        tags: tuple[str, ...],
        multiplier: int,
    ) -> _Lot:
        entry_price = _close_on_or_before(series, entered) or price
        data = {
            "symbol": symbol,
            "quantity": str(quantity),
            "entry_price": str(entry_price),
            "entry_date": entered.isoformat(),
            "notes": "Demo position",
        }
        return _Lot(data=data, tags=tags, exposure=Decimal(quantity) * price * multiplier)

    # Analytics -------------------------------------------------------------------------------
    def _analytics(self, portfolio_ids: list[int]) -> None:
        if self._analytics_complete(portfolio_ids):
            self.say(f"Analytics for {self.as_of} and {HISTORY_SESSIONS} sessions: already there.")
            return
        started = time.perf_counter()
        runs = run_daily_batch(self.as_of, portfolio_ids=portfolio_ids)
        self._timed("batch", started)
        for run in runs:
            assert run.duration_s is not None  # a finished run is timed
            self.report.batch.append(
                {"name": run.name, "status": run.status, "duration_s": round(run.duration_s, 2)}
            )
        jobs = ", ".join(f"{r.name} {r.status} {r.duration_s:.1f}s" for r in runs)
        self.say(f"Daily batch: {jobs}.")
        for run in runs:
            for portfolio, reason in run.failed_portfolios.items():
                self.say(f"  {run.name}: portfolio {portfolio}: {reason}")
        started = time.perf_counter()
        for portfolio in Portfolio.objects.filter(pk__in=portfolio_ids).order_by("id"):
            history: dict[str, Any] = {"portfolio": portfolio, "days_back": HISTORY_SESSIONS}
            self.report.snapshots += generate_historical_snapshots(**history, end=self.as_of)
            generate_historical_attribution(**history, end=self.as_of)
        self._timed("snapshots", started)
        self.say(f"Snapshots: {self.report.snapshots} rows over {HISTORY_SESSIONS} sessions.")

    def _analytics_complete(self, portfolio_ids: list[int]) -> bool:
        """Whether every result the batch and the history write exists for every demo book."""
        wanted = set(portfolio_ids)
        for model in (
            PortfolioFactorExposure,
            MarketRiskScenario,
            RiskMetricSnapshot,
            StressTestResult,
        ):
            have = model.objects.filter(portfolio_id__in=wanted, date=self.as_of)
            if set(have.values_list("portfolio_id", flat=True).distinct()) != wanted:
                return False
        history = calendar.sessions_back(self.as_of, HISTORY_SESSIONS)
        snapshots = PortfolioSnapshot.objects.filter(
            portfolio_id__in=wanted, date__in=history
        ).count()
        options = (
            Position.objects.filter(portfolio_id__in=wanted, closed_at__isnull=True)
            .exclude(option_type="")
            .exclude(greeks_history__date=self.as_of)
        )
        return snapshots == len(wanted) * len(history) and not options.exists()


def demo_seed(*, reset: bool = False, stdout: TextSink | None = None) -> SeedReport:
    """Seed (or with `reset`, rebuild) the demo: accounts, prices, books, analytics."""

    def say(line: str) -> None:
        if stdout is None:
            logger.info(line)
        else:
            stdout.write(line + "\n")

    return _Seeder(reset=reset, out=say).run()
