"""The Black-Scholes engine: Greeks and implied volatility for 100,000 options at once, beside
the per-option loops of the two reference libraries: mibian (price and all Greeks from one
`BS(...)`, no implied volatility, so it does less per option than the engine's main row) and
QuantLib (per option: quotes, flat curves, a Black-Scholes-Merton process and an analytic
engine, then NPV and five Greeks). No database: numpy in one process, best of 5 for the engine.
Targets: 100,000 options (Greeks and implied volatility) under 0.2 s, and at least 1,000x
faster per option than mibian."""

from __future__ import annotations

from collections.abc import Callable

import mibian
import numpy as np
import QuantLib as ql

from bench import harness
from marketdata.calculations import black_scholes as bs

OPTIONS = 100_000
LOOP_OPTIONS = 1_000
RUNS = 5
TARGET_S = 0.2
TARGET_VS_MIBIAN = 1_000


def book(n: int, seed: int = 3) -> dict[str, np.ndarray]:
    """The test suite's range: S 1..1000, K 0.3S..3S, 1 day..3 years, r -1%..10%, q 0..5%,
    sigma 5%..150%, calls and puts."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(1.0, 1000.0, n)
    days = rng.integers(1, 3 * 365 + 1, n)
    return {
        "S": S,
        "K": S * rng.uniform(0.3, 3.0, n),
        "days": days,
        "T": days / 365.0,
        "r": rng.uniform(-0.01, 0.10, n),
        "q": rng.uniform(0.0, 0.05, n),
        "sigma": rng.uniform(0.05, 1.5, n),
        "is_call": rng.random(n) < 0.5,
    }


def best_seconds(run: Callable[[], object]) -> float:
    return min(harness.timed(run)[0] for _ in range(RUNS))


def engine_runs(b: dict[str, np.ndarray]) -> tuple[Callable[[], object], Callable[[], object]]:
    """Greeks alone, and Greeks then the implied volatility of the prices they give."""
    market = (b["S"], b["K"], b["T"], b["r"])

    def greeks() -> bs.Greeks:
        return bs.greeks(*market, b["sigma"], b["is_call"], b["q"])

    def greeks_and_iv() -> bs.ImpliedVol:
        return bs.implied_volatility(greeks().price, *market, b["is_call"], b["q"])

    return greeks, greeks_and_iv


def mibian_seconds(b: dict[str, np.ndarray]) -> float:
    def run() -> None:
        for i in range(len(b["S"])):
            # mibian's BS has no dividend yield; its constructor prices and computes the Greeks.
            mibian.BS(
                [b["S"][i], b["K"][i], b["r"][i] * 100, b["days"][i]],
                volatility=b["sigma"][i] * 100,
            )

    return harness.timed(run)[0]


def quantlib_seconds(b: dict[str, np.ndarray]) -> float:
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count, calendar = ql.Actual365Fixed(), ql.NullCalendar()

    def one(i: int) -> tuple[float, ...]:
        rate = ql.YieldTermStructureHandle(ql.FlatForward(today, float(b["r"][i]), day_count))
        dividend = ql.YieldTermStructureHandle(ql.FlatForward(today, float(b["q"][i]), day_count))
        vol = ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, calendar, float(b["sigma"][i]), day_count)
        )
        spot = ql.QuoteHandle(ql.SimpleQuote(float(b["S"][i])))
        process = ql.BlackScholesMertonProcess(spot, dividend, rate, vol)
        kind = ql.Option.Call if b["is_call"][i] else ql.Option.Put
        option = ql.VanillaOption(
            ql.PlainVanillaPayoff(kind, float(b["K"][i])),
            ql.EuropeanExercise(today + int(b["days"][i])),
        )
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        return (
            option.NPV(),
            option.delta(),
            option.gamma(),
            option.theta(),
            option.vega(),
            option.rho(),
        )

    def run() -> None:
        for i in range(len(b["S"])):
            one(i)

    return harness.timed(run)[0]


def main() -> None:
    greeks, greeks_and_iv = engine_runs(book(OPTIONS))
    greeks_s, engine_s = best_seconds(greeks), best_seconds(greeks_and_iv)
    loop_book = book(LOOP_OPTIONS, seed=4)
    mibian_s, quantlib_s = mibian_seconds(loop_book), quantlib_seconds(loop_book)
    us = 1e6 / OPTIONS * engine_s  # per option, Greeks and implied volatility
    mibian_us, quantlib_us = 1e6 * mibian_s / LOOP_OPTIONS, 1e6 * quantlib_s / LOOP_OPTIONS
    harness.print_table(
        f"Black-Scholes engine: {OPTIONS:,} options at once vs per-option loops (targets: Greeks "
        f"+ IV < {TARGET_S:g} s; >= {TARGET_VS_MIBIAN:,}x faster per option than mibian)",
        ["engine", "options", "total s", "us/option", "greeks + IV faster by", "target", "holds"],
        [
            [
                f"vectorized greeks + IV (best of {RUNS})",
                OPTIONS,
                engine_s,
                us,
                "1x",
                f"< {TARGET_S:g} s",
                "yes" if engine_s < TARGET_S else "NO",
            ],
            [
                f"vectorized greeks only (best of {RUNS})",
                OPTIONS,
                greeks_s,
                1e6 / OPTIONS * greeks_s,
                "-",
                "-",
                "-",
            ],
            [
                "mibian BS loop (price + Greeks, no IV)",
                LOOP_OPTIONS,
                mibian_s,
                mibian_us,
                f"{mibian_us / us:,.0f}x",
                f">= {TARGET_VS_MIBIAN:,}x",
                "yes" if mibian_us / us >= TARGET_VS_MIBIAN else "NO",
            ],
            [
                "QuantLib loop (process + NPV + Greeks)",
                LOOP_OPTIONS,
                quantlib_s,
                quantlib_us,
                f"{quantlib_us / us:,.0f}x",
                "-",
                "-",
            ],
        ],
    )


if __name__ == "__main__":
    main()
