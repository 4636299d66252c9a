from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest

from marketdata.calendar import sessions_back, trading_days
from marketdata.providers.base import BAR_COLUMNS, CHAIN_COLUMNS, RATE_10Y, RATE_SHORT, NoData
from marketdata.providers.synthetic import (
    FACTORS,
    SyntheticProvider,
    _panel,
    expected_market_beta,
    model,
)
from sigmasight.servers import ROOT

END = date(2026, 11, 20)

DIGEST_SCRIPT = """
import hashlib, sys
from datetime import date
from marketdata.providers.synthetic import SyntheticProvider
bars = SyntheticProvider().daily_bars(["AAPL", "SPY", "ZZTOP", "AAPL261218C00150000"],
                                      date(2026, 1, 2), date(2026, 11, 20))
sys.stdout.write(hashlib.sha256(bars.to_csv(index=False).encode()).hexdigest())
"""


@pytest.fixture(scope="module")
def provider() -> SyntheticProvider:
    return SyntheticProvider()


def _digest_in_fresh_process(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


def test_synthetic_identical_on_two_runs(provider):
    # Two fresh interpreters with different hash randomisation, and this one, agree exactly.
    first, second = _digest_in_fresh_process("1"), _digest_in_fresh_process("12345")
    bars = provider.daily_bars(
        ["AAPL", "SPY", "ZZTOP", "AAPL261218C00150000"], date(2026, 1, 2), date(2026, 11, 20)
    )
    here = hashlib.sha256(bars.to_csv(index=False).encode()).hexdigest()
    assert first == second == here


def test_synthetic_shorter_range_is_a_slice_of_the_longer(provider):
    long = provider.daily_bars(["MSFT", "XOM"], date(2025, 1, 2), END)
    short = provider.daily_bars(["MSFT", "XOM"], date(2026, 3, 2), date(2026, 3, 31))
    merged = short.merge(long, on=["symbol", "date"], suffixes=("", "_long"))
    assert len(merged) == len(short) > 0
    np.testing.assert_array_equal(merged["close"], merged["close_long"])


def test_synthetic_bars_only_on_sessions_with_sane_values(provider):
    symbols = [f"T{i:03d}" for i in range(200)] + ["SPY", "VIXY", "TLT", "USO", "NVDA"]
    bars = provider.daily_bars(symbols, date(2025, 6, 2), END)
    assert list(bars.columns) == BAR_COLUMNS
    sessions = set(trading_days(date(2025, 6, 2), END))
    assert set(bars["date"]) == sessions
    assert len(bars) == len(symbols) * len(sessions)
    numeric = bars[["open", "high", "low", "close", "adjusted_close", "volume"]].to_numpy(float)
    assert np.isfinite(numeric).all()
    assert (numeric[:, :5] > 0).all()
    assert (bars["high"] >= bars[["open", "close", "low"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()


def _returns(provider: SyntheticProvider, symbol: str, sessions: int = 253) -> np.ndarray:
    days = sessions_back(END, sessions)
    bars = provider.daily_bars([symbol], days[0], days[-1])
    close = bars["close"].to_numpy(float)
    return close[1:] / close[:-1] - 1


@pytest.mark.parametrize("symbol", ["AAPL", "JPM", "XOM", "KO", "DAL", "UNSEEN1"])
def test_synthetic_market_beta_recovered_within_tolerance(provider, symbol):
    """Over 252 sessions the OLS beta on SPY returns is within 0.3 of the generating beta.

    The standard error of a 252-day beta here is about 0.08 (idiosyncratic vol 1-2% a day
    against a market vol near 1%), so 0.3 is a 3-4 sigma bound."""
    stock, market = _returns(provider, symbol), _returns(provider, "SPY")
    slope = np.polyfit(market, stock, 1)[0]
    assert abs(slope - expected_market_beta(symbol)) < 0.3, (symbol, slope)


def test_synthetic_factor_etfs_follow_their_factors(provider):
    sessions, factors, _ = _panel(END.year)
    index = np.flatnonzero(sessions <= np.datetime64(END))[-252:]  # the sessions of 252 returns
    spy, vtv = _returns(provider, "SPY"), _returns(provider, "VTV")
    residual = vtv - np.polyfit(spy, vtv, 1)[0] * spy
    value = factors[index, FACTORS.index("value")]
    assert np.corrcoef(residual, value)[0, 1] > 0.9
    oil = factors[index, FACTORS.index("oil")]
    assert np.corrcoef(_returns(provider, "USO"), oil)[0, 1] > 0.99


def test_synthetic_rates_are_plausible_decimals(provider):
    ten_year = provider.rate_series(RATE_10Y, date(2025, 1, 2), END)
    short = provider.rate_series(RATE_SHORT, date(2025, 1, 2), END)
    assert len(ten_year) == len(trading_days(date(2025, 1, 2), END))
    assert ten_year["value"].between(0.0, 0.10).all()
    assert short["value"].between(0.0, 0.10).all()
    changes = np.diff(ten_year["value"].to_numpy())
    assert 0.0002 < changes.std() < 0.0015  # a few basis points a day


@pytest.mark.parametrize("root", ["AAPL", "SPX"])
def test_synthetic_option_chain_satisfies_put_call_parity(provider, root):
    """Closes priced by the contract's style with the name's yield q: SPX's (European) satisfy
    C - P = S e^-qT - K e^-rT; AAPL's (American) the American bounds
    S e^-qT - K <= C - P <= S - K e^-rT (Hull, 11th ed., 11.7 with a yield)."""
    chain = provider.option_chain(root, None, END)
    assert list(chain.columns) == CHAIN_COLUMNS
    assert (chain["date"] == END).all()
    assert set(chain["option_type"]) == {"C", "P"}
    spot = float(provider.daily_bars([root], END, END)["close"].iloc[0])
    rate = float(provider.rate_series(RATE_SHORT, END, END)["value"].iloc[0])
    q = provider.dividend_yields([root], END)[root]
    pairs = chain.pivot_table(index=["expiration", "strike"], columns="option_type", values="close")
    for (expiration, strike), row in pairs.iterrows():
        years = (expiration - END).days / 365
        difference = row["C"] - row["P"]
        if root == "SPX":
            forward = spot * np.exp(-q * years) - strike * np.exp(-rate * years)
            assert abs(difference - forward) <= 0.011  # both closes rounded to cents
        else:
            low = spot * np.exp(-q * years) - strike
            high = spot - strike * np.exp(-rate * years)
            assert low - 0.011 <= difference <= high + 0.011
    assert chain["implied_volatility"].between(0.05, 3.0).all()


def test_synthetic_option_history_stops_at_expiration(provider):
    bars = provider.daily_bars(["AAPL260116C00300000"], date(2026, 1, 5), END)
    assert bars["date"].max() == date(2026, 1, 16)
    assert (bars["close"] >= 0).all()


def test_synthetic_chain_without_future_expiration_is_no_data(provider):
    with pytest.raises(NoData):
        provider.option_chain("AAPL", date(2026, 1, 16), END)


def test_synthetic_sectors_real_for_known_tickers_and_stable_for_unknown(provider):
    info = provider.sector_industry(["AAPL", "JPM", "UNSEEN1", "SPY"])
    assert info["AAPL"].sector == "Technology"
    assert info["JPM"].industry == "Banks - Diversified"
    assert info["SPY"].sector == "ETF"
    assert info["UNSEEN1"] == provider.sector_industry(["UNSEEN1"])["UNSEEN1"]
    assert model("UNSEEN1").industry.endswith("(synthetic)")


def test_synthetic_options_fetched_together_are_each_as_fetched_alone(provider):
    """A fetch prices every contract's bars in one engine call (styles, roots and expirations
    mixed, one expired mid-range): each contract's bars are exactly its own fetch's."""
    contracts = [
        "AAPL261218C00150000",
        "AAPL261218P00220000",
        "SPY261218P00500000",
        "JPM260116C00200000",  # expires inside the range
        "KO270115P00060000",
    ]
    together = provider.daily_bars([*contracts, "AAPL"], date(2026, 1, 2), END)
    for symbol in contracts:
        alone = provider.daily_bars([symbol], date(2026, 1, 2), END)
        mine = together[together["symbol"] == symbol].reset_index(drop=True)
        assert len(alone) > 0
        pd.testing.assert_frame_equal(mine, alone.reset_index(drop=True), check_exact=True)
