"""A deterministic, factor-structured synthetic market, so the product runs offline.

Every number depends only on the symbol and the session: the same on every machine and run.
Daily simple returns follow R = F b + e, where F holds the factor returns of the session
(market, six style factors, rates and the stress macro factors), b the symbol's loadings
(universe.py) and e its own noise; factor ETFs load on their factor, so betas, correlations and
stress tests estimated from these prices are meaningful. Random draws come from generators
seeded by (SEED, symbol), filled row by row from EPOCH, so a longer request never changes the
numbers of a shorter one. Options are priced by Black-Scholes on a volatility smile from the
underlying's path, so a held option has a price history too. Every row says source="synthetic".
Dividend yields are a constant per name (universe.DIVIDEND_YIELDS): option closes are priced with
them and by the contract's exercise style (American for stocks and ETFs, by Bjerksund-Stensland
2002; European for index roots), so implied volatilities solved the same way recover the smile;
stock closes do not drop on ex-dates (the paths are total-return-like, a stated simplification).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from marketdata.calculations.black_scholes import DAYS_PER_YEAR, TRADING_DAYS
from marketdata.calculations.options import price as option_price
from marketdata.calendar import trading_days
from marketdata.providers import universe
from marketdata.providers.base import (
    BAR_COLUMNS,
    CHAIN_COLUMNS,
    RATE_10Y,
    RATE_COLUMNS,
    RATE_SHORT,
    MarketDataProvider,
    NoData,
    SectorInfo,
    empty_actions,
    empty_bars,
)
from marketdata.symbols import (
    AMERICAN,
    SymbolError,
    build_occ,
    exercise_style,
    looks_like_occ,
    parse_occ,
)

SEED = 20_150_102
EPOCH = date(2015, 1, 2)
FACTORS = [
    "market",
    "value",
    "growth",
    "momentum",
    "quality",
    "size",
    "low_vol",
    "rates",
    "oil",
    "gold",
    "europe",
    "em",
    "china",
    "volatility",
    "credit",
    "travel",
    "tech",
]
_F = {name: i for i, name in enumerate(FACTORS)}

# Daily volatility of each factor's return (rates: of the 10-year yield change, in decimal).
FACTOR_VOL = {
    "market": 0.0105,
    "value": 0.004,
    "growth": 0.0045,
    "momentum": 0.005,
    "quality": 0.003,
    "size": 0.004,
    "low_vol": 0.003,
    "rates": 0.0006,
    "oil": 0.022,
    "gold": 0.009,
    "europe": 0.012,
    "em": 0.012,
    "china": 0.016,
    "volatility": 0.045,
    "credit": 0.004,
    "travel": 0.017,
    "tech": 0.013,
}
FACTOR_DRIFT = {"market": 0.0003, "volatility": -0.0015, "gold": 0.0001, "tech": 0.0004}
# Correlations between factor returns; the rest are zero. Styles are residual to the market.
FACTOR_CORRELATION = {
    ("market", "europe"): 0.75,
    ("market", "em"): 0.7,
    ("market", "china"): 0.55,
    ("market", "tech"): 0.88,
    ("market", "travel"): 0.65,
    ("market", "credit"): 0.6,
    ("market", "volatility"): -0.75,
    ("market", "oil"): 0.3,
    ("market", "rates"): 0.25,
    ("market", "gold"): 0.05,
    ("value", "growth"): -0.6,
    ("momentum", "growth"): 0.3,
    ("quality", "low_vol"): 0.4,
    ("em", "china"): 0.75,
    ("europe", "em"): 0.6,
    ("credit", "volatility"): -0.6,
    ("oil", "travel"): -0.2,
    ("tech", "growth"): 0.3,
    ("europe", "tech"): 0.6,
    ("em", "tech"): 0.55,
    ("travel", "volatility"): -0.5,
    ("europe", "travel"): 0.5,
    ("credit", "travel"): 0.4,
}
STUDENT_DF = 5  # fat tails: factor shocks are Student-t scaled to unit variance

RATE_START = {RATE_10Y: 0.022, RATE_SHORT: 0.0005}
RATE_MEAN = {RATE_10Y: 0.032, RATE_SHORT: 0.022}
RATE_REVERSION = 0.004  # per session
SHORT_RATE_NOISE = 0.0002


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _uniform(symbol: str, salt: str, low: float, high: float) -> float:
    return low + (high - low) * (_hash(f"{salt}:{symbol}") % 1_000_003) / 1_000_003


def _correlation() -> np.ndarray:
    corr = np.eye(len(FACTORS))
    for (a, b), rho in FACTOR_CORRELATION.items():
        corr[_F[a], _F[b]] = corr[_F[b], _F[a]] = rho
    # Hand-set correlations need not be jointly consistent: clip to the nearest PSD matrix.
    values, vectors = np.linalg.eigh(corr)
    repaired = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(repaired))
    return repaired / np.outer(scale, scale)


FACTOR_COVARIANCE = _correlation() * np.outer(*[np.array([FACTOR_VOL[f] for f in FACTORS])] * 2)


@lru_cache(maxsize=8)
def _panel(last_year: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Sessions from EPOCH through `last_year`, their factor returns and rate levels."""
    sessions = np.array(trading_days(EPOCH, date(last_year, 12, 31)), dtype="datetime64[D]")
    n = len(sessions)
    rng = np.random.default_rng([SEED, 0])
    shocks = rng.standard_t(STUDENT_DF, size=(n, len(FACTORS))) / np.sqrt(
        STUDENT_DF / (STUDENT_DF - 2)
    )
    returns = shocks @ np.linalg.cholesky(FACTOR_COVARIANCE).T
    returns += np.array([FACTOR_DRIFT.get(f, 0.0) for f in FACTORS])
    short_noise = np.random.default_rng([SEED, 1]).standard_normal(n) * SHORT_RATE_NOISE
    from scipy.signal import lfilter  # here: importing scipy.signal costs every start 0.9 s

    rates = {}
    for name, shock in ((RATE_10Y, returns[:, _F["rates"]]), (RATE_SHORT, None)):
        if shock is None:
            shock = 0.6 * returns[:, _F["rates"]] + short_noise
        # Mean-reverting level: y_t = (1-k) y_{t-1} + k * mean + shock_t, from the start level.
        k = RATE_REVERSION
        drive = k * RATE_MEAN[name] + shock
        drive[0] += (1 - k) * RATE_START[name]
        rates[name] = np.maximum(lfilter([1.0], [1.0, -(1 - k)], drive), 0.0)
    return sessions, returns, rates


def _last_year(end: date) -> int:
    return max(end.year, date.today().year)


@dataclass(frozen=True)
class _Model:
    loadings: np.ndarray
    idio_vol: float
    start_price: float
    base_volume: float
    drift: float
    name: str
    sector: str
    industry: str
    asset_type: str
    dividend_yield: float  # continuous, annual, decimal


def _dividend_yield(symbol: str, sector: str, known: bool) -> float:
    """The table's yield; 0 for a known name it leaves out; an invented name its sector's."""
    if symbol in universe.DIVIDEND_YIELDS or known:
        return universe.DIVIDEND_YIELDS.get(symbol, 0.0)
    typical = universe.SECTOR_DIVIDEND_YIELDS.get(sector, 0.0)
    return round(typical * _uniform(symbol, "dividend", 0.5, 1.5), 4)


@lru_cache(maxsize=4096)
def model(symbol: str) -> _Model:
    """The generating model of a symbol: its factor loadings, noise, price level and labels."""
    loadings = np.zeros(len(FACTORS))
    jitter = np.random.default_rng([SEED, 2, _hash(symbol)]).normal(0.0, 0.12, len(FACTORS))
    if symbol in universe.PROXIES:
        for factor, value in universe.PROXIES[symbol].items():
            loadings[_F[factor]] = value
        return _Model(
            loadings=loadings,
            idio_vol=universe.PROXY_IDIO_VOL,
            start_price=_uniform(symbol, "price", 40, 400),
            base_volume=_uniform(symbol, "volume", 5e6, 8e7),
            drift=0.0,
            name=universe.ETF_NAMES.get(symbol, symbol),
            sector="ETF",
            industry="Exchange Traded Fund",
            asset_type="etf",
            dividend_yield=_dividend_yield(symbol, "ETF", known=True),
        )
    profile = universe.KNOWN_STOCKS.get(symbol)
    known = profile is not None
    if profile is None:
        sectors = sorted(universe.SECTOR_LOADINGS)
        sector = sectors[_hash(symbol) % len(sectors)]
        profile = universe.Profile(name=symbol, sector=sector, industry=f"{sector} (synthetic)")
    template = dict(universe.SECTOR_LOADINGS[profile.sector])
    for factor, value in profile.extra.items():
        template[factor] = template.get(factor, 0.0) + value
    for factor, value in template.items():
        # Jitter in proportion, so rate loadings of several units stay in proportion too.
        loadings[_F[factor]] = value * (1 + jitter[_F[factor]])
    return _Model(
        loadings=loadings,
        idio_vol=_uniform(symbol, "idio", 0.009, 0.02),
        start_price=_uniform(symbol, "price", 15, 450),
        base_volume=_uniform(symbol, "volume", 8e5, 4e7),
        drift=_uniform(symbol, "alpha", -1e-4, 2e-4),
        name=profile.name,
        sector=profile.sector,
        industry=profile.industry,
        asset_type="stock",
        dividend_yield=_dividend_yield(symbol, profile.sector, known),
    )


def expected_market_beta(symbol: str) -> float:
    """The slope of this symbol's returns on the market factor implied by the model: its own
    market loading plus what its other factors carry of the market through their correlation."""
    b = model(symbol).loadings
    cov_with_market = FACTOR_COVARIANCE[:, _F["market"]]
    return float(b @ cov_with_market / FACTOR_COVARIANCE[_F["market"], _F["market"]])


def annual_volatility(symbol: str) -> float:
    m = model(symbol)
    return float(
        np.sqrt((m.loadings @ FACTOR_COVARIANCE @ m.loadings + m.idio_vol**2) * TRADING_DAYS)
    )


def _paths(symbols: list[str], last_year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close, simple returns and noise draws (sessions x symbols) for underlying-type symbols."""
    sessions, factors, _ = _panel(last_year)
    n = len(sessions)
    models = [model(s) for s in symbols]
    loadings = np.array([m.loadings for m in models])
    draws = np.stack(
        [np.random.default_rng([SEED, 3, _hash(s)]).standard_normal((n, 4)) for s in symbols],
        axis=1,
    )  # n x symbols x 4: own noise, open gap, high and low excursions
    idio = np.array([m.idio_vol for m in models])
    drift = np.array([m.drift for m in models])
    returns = np.clip(factors @ loadings.T + draws[:, :, 0] * idio + drift, -0.9, 3.0)
    start = np.array([m.start_price for m in models])
    close = start * np.cumprod(1.0 + returns, axis=0)
    return close, returns, draws


def _smile(moneyness: np.ndarray, years: np.ndarray, atm: float) -> np.ndarray:
    """Implied vol by log-moneyness: put skew and some curvature, flatter for longer expiries."""
    m = moneyness / np.sqrt(np.maximum(years, 1 / DAYS_PER_YEAR) * 4)
    return np.clip(atm * (1.0 - 0.25 * m + 0.6 * m**2), 0.05, 3.0)


def _option_inputs(root: str, start: date, end: date, contracts: list) -> dict[str, np.ndarray]:
    """The pricing inputs and bar fields of contracts on one underlying for every session in
    range while they live (`_priced` prices every group's rows in one call)."""
    if root in (RATE_10Y, RATE_SHORT):
        return {}
    sessions, _, rates = _panel(_last_year(end))
    window = np.flatnonzero((sessions >= np.datetime64(start)) & (sessions <= np.datetime64(end)))
    if not len(window):
        return {}
    underlying_close, _, _ = _paths([root], _last_year(end))
    spot = underlying_close[window, 0]
    dates = pd.Series(sessions[window]).dt.date.to_numpy()
    atm = annual_volatility(root)
    parts: dict[str, list] = {k: [] for k in ("symbol", "date", "spot", "strike", "years", "days")}
    parts.update(rate=[], vol=[], is_call=[])
    for contract in contracts:
        live = dates <= contract.expiration
        if not live.any():
            continue
        days = np.array([(contract.expiration - d).days for d in dates[live]], dtype=float)
        years = days / DAYS_PER_YEAR
        strike = float(contract.strike)
        parts["symbol"].append(np.full(len(days), contract.symbol, dtype=object))
        parts["date"].append(dates[live])
        parts["spot"].append(spot[live])
        parts["strike"].append(np.full(len(days), strike))
        parts["years"].append(years)
        parts["days"].append(days + _hash(contract.symbol) % 97)
        parts["rate"].append(rates[RATE_SHORT][window][live])
        parts["vol"].append(_smile(np.log(strike / spot[live]), years, atm))
        parts["is_call"].append(np.full(len(days), contract.option_type == "C"))
    if not parts["symbol"]:
        return {}
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["dividend"] = np.full(len(out["spot"]), model(root).dividend_yield)
    out["american"] = np.full(len(out["spot"]), exercise_style(root) == AMERICAN)
    return out


def _priced(groups: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Bars of `_option_inputs` groups, every row priced by its style in one call."""
    groups = [g for g in groups if g]
    if not groups:
        return empty_bars()
    rows = {k: np.concatenate([g[k] for g in groups]) for k in groups[0]}
    value = option_price(
        rows["spot"],
        rows["strike"],
        rows["years"],
        rows["rate"],
        rows["vol"],
        rows["is_call"],
        rows["dividend"],
        rows["american"],
    )
    close = np.round(value, 2)
    return pd.DataFrame(
        {
            "symbol": rows["symbol"],
            "date": rows["date"],
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "adjusted_close": close,
            "volume": (np.abs(np.sin(rows["days"])) * 900 + 50).astype(np.int64),
            "implied_volatility": rows["vol"],
        }
    )


class SyntheticProvider(MarketDataProvider):
    name = "synthetic"

    def daily_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        if end < EPOCH or end < start:
            return empty_bars()
        start = max(start, EPOCH)
        options = [s for s in symbols if looks_like_occ(s)]
        plain = [s for s in symbols if s not in options and s not in (RATE_10Y, RATE_SHORT)]
        frames = []
        if plain:
            frames.append(self._stock_bars(plain, start, end))
        if options:
            frames.append(self._option_bars(options, start, end))
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_bars()
        return pd.concat(frames, ignore_index=True)[BAR_COLUMNS]

    def _stock_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        sessions, _, _ = _panel(_last_year(end))
        close, returns, draws = _paths(symbols, _last_year(end))
        window = (sessions >= np.datetime64(start)) & (sessions <= np.datetime64(end))
        idx = np.flatnonzero(window)
        if not len(idx):
            return empty_bars()
        prev = np.vstack([close[:1] / (1 + returns[:1]), close[:-1]])[idx]
        c, r, d = close[idx], returns[idx], draws[idx]
        open_ = prev * (1 + 0.3 * r + 0.002 * d[:, :, 1])
        high = np.maximum(open_, c) * (1 + 0.004 * np.abs(d[:, :, 2]))
        low = np.minimum(open_, c) * (1 - 0.004 * np.abs(d[:, :, 3]))
        base_volume = np.array([model(s).base_volume for s in symbols])
        volume = base_volume * np.exp(0.3 * d[:, :, 1]) * (1 + 8 * np.abs(r))
        days, count = len(idx), len(symbols)
        dates = pd.Series(sessions[idx]).dt.date.to_numpy()
        return pd.DataFrame(
            {
                "symbol": np.repeat(np.array(symbols, dtype=object), days),
                "date": np.tile(dates, count),
                "open": open_.T.ravel().round(4),
                "high": high.T.ravel().round(4),
                "low": low.T.ravel().round(4),
                "close": c.T.ravel().round(4),
                "adjusted_close": c.T.ravel().round(4),
                "volume": volume.T.ravel().round().astype(np.int64),
            }
        )

    def _option_bars(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        groups: dict[tuple[str, date], list] = {}
        for symbol in symbols:
            try:
                occ = parse_occ(symbol)
            except SymbolError:
                continue
            groups.setdefault((occ.root, min(end, occ.expiration)), []).append(occ)
        return _priced(
            [
                _option_inputs(root, start, last, contracts)
                for (root, last), contracts in groups.items()
            ]
        )

    def _price_options(self, root: str, start: date, end: date, contracts: list) -> pd.DataFrame:
        """Model closes of contracts on one underlying for every session in range: by the
        contract's exercise style, with the underlying's dividend yield."""
        return _priced([_option_inputs(root, start, end, contracts)])

    def corporate_actions(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """None: the synthetic market's series are continuous (it never splits or pays)."""
        return empty_actions()

    def sector_industry(self, symbols: list[str]) -> dict[str, SectorInfo]:
        result = {}
        for symbol in symbols:
            if looks_like_occ(symbol) or symbol in (RATE_10Y, RATE_SHORT):
                continue
            m = model(symbol)
            result[symbol] = SectorInfo(m.sector, m.industry, m.name)
        return result

    def dividend_yields(self, symbols: list[str], as_of: date) -> dict[str, float]:
        """Each name's constant yield from its model (universe.DIVIDEND_YIELDS); none before the
        market's first session, none for options and rate series."""
        if as_of < EPOCH:
            return {}
        return {
            symbol: model(symbol).dividend_yield
            for symbol in symbols
            if not looks_like_occ(symbol) and symbol not in (RATE_10Y, RATE_SHORT)
        }

    def option_chain(self, underlying: str, expiration: date | None, as_of: date) -> pd.DataFrame:
        expirations = [expiration] if expiration else monthly_expirations(as_of, 6)
        expirations = [e for e in expirations if e > as_of]
        if not expirations:
            raise NoData(self.name, f"no listed expiration of {underlying} after {as_of}")
        bars = self._stock_bars([underlying], as_of, as_of)
        if not len(bars):
            raise NoData(self.name, f"no price for {underlying} on {as_of}")
        spot = float(bars["close"].iloc[0])
        step = 1.0 if spot < 50 else 2.5 if spot < 150 else 5.0
        strikes = np.unique(np.round(spot * np.linspace(0.7, 1.3, 25) / step) * step)
        contracts = [
            parse_occ(build_occ(underlying, exp, right, strike))
            for exp in expirations
            for strike in strikes
            for right in ("C", "P")
        ]
        priced = self._price_options(underlying, as_of, as_of, contracts)
        if not len(priced):
            raise NoData(self.name, f"no live contract of {underlying} on {as_of}")
        parsed = {c.symbol: c for c in contracts}
        return pd.DataFrame(
            {
                "symbol": priced["symbol"],
                "underlying": underlying,
                "expiration": [parsed[s].expiration for s in priced["symbol"]],
                "strike": [float(parsed[s].strike) for s in priced["symbol"]],
                "option_type": [parsed[s].option_type for s in priced["symbol"]],
                "date": as_of,
                "close": priced["close"],
                "implied_volatility": priced["implied_volatility"],
            }
        )[CHAIN_COLUMNS]

    def rate_series(self, name: str, start: date, end: date) -> pd.DataFrame:
        if name not in (RATE_10Y, RATE_SHORT):
            raise ValueError(f"Unknown rate series {name!r}; expected {RATE_10Y} or {RATE_SHORT}.")
        sessions, _, rates = _panel(_last_year(end))
        window = (sessions >= np.datetime64(max(start, EPOCH))) & (sessions <= np.datetime64(end))
        return pd.DataFrame(
            {
                "date": pd.Series(sessions[window]).dt.date.to_numpy(),
                "value": rates[name][window].round(6),
            }
        )[RATE_COLUMNS]


def monthly_expirations(after: date, count: int) -> list[date]:
    """Standard monthly expirations (third Friday; the Thursday before when it is a holiday)."""
    result: list[date] = []
    year, month = after.year, after.month
    while len(result) < count:
        first = date(year, month, 1)
        friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
        sessions = trading_days(friday - timedelta(days=3), friday)
        expiry = sessions[-1] if sessions else friday
        if expiry > after:
            result.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result
