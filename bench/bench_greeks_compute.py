"""`greeks_compute` end to end (read the book and prices, implied vols, Greeks, bulk upsert) for
10,000 option positions, beside a per-position loop (read one position and its prices, compute,
`save()` one row) measured on a slice in the same run. Target: under 5 s."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NamedTuple

import numpy as np

from bench import harness

OPTIONS = 10_000
UNDERLYINGS = 200
SLICE = 200
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TARGET_S = 5.0


class Quote(NamedTuple):
    """An option of the generated book and what prices its close."""

    symbol: str
    spot: float
    strike: float
    years: float
    is_call: bool


def worker() -> dict:
    harness.worker_setup()
    from django.db import connection
    from django.utils import timezone

    from analytics.models import PositionGreeks
    from analytics.services import greeks_compute, positions_value
    from marketdata.calculations import black_scholes as bs
    from marketdata.calendar import sessions_back
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import prices_fetch_and_cache, securities_ensure
    from marketdata.symbols import build_occ
    from marketdata.writes import prices_upsert
    from portfolios.models import Portfolio, Position
    from portfolios.services import positions_import_csv
    from sigmasight.accounts.models import User

    rng = np.random.default_rng(11)
    roots = [f"U{i:03d}" for i in range(UNDERLYINGS)]
    start = sessions_back(AS_OF, 70)[0]
    prices_fetch_and_cache(
        symbols=[*roots, "US3M"], start=start, end=AS_OF, providers=[SyntheticProvider()], now=NOW
    )
    spot = {
        b.symbol: b.close for b in SyntheticProvider().daily_bars(roots, AS_OF, AS_OF).itertuples()
    }
    lines = ["symbol,quantity,entry_price,entry_date"]
    quotes: list[Quote] = []
    seen: set[str] = set()
    for n in range(OPTIONS):
        root = roots[n % UNDERLYINGS]
        kind = "C" if n % 2 else "P"
        strike = round(spot[root] * rng.uniform(0.7, 1.3), 1)
        expiry = date(2027, 1 + n % 12, 15)
        symbol = build_occ(root, expiry, kind, strike)
        while symbol in seen:  # one lot per contract and entry date
            strike = round(strike + 0.1, 1)
            symbol = build_occ(root, expiry, kind, strike)
        seen.add(symbol)
        lines.append(
            f"{symbol},{rng.choice([-1, 1]) * rng.integers(1, 20)},5,2026-01-{2 + n // 2000:02d}"
        )
        quotes.append(
            Quote(
                symbol=symbol,
                spot=spot[root],
                strike=strike,
                years=(expiry - AS_OF).days / 365,
                is_call=kind == "C",
            )
        )
    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    portfolio = Portfolio.objects.create(owner=user, name="bench")
    positions_import_csv(portfolio=portfolio, raw=("\n".join(lines) + "\n").encode())
    symbols = [q.symbol for q in quotes]
    closes = bs.price(
        np.array([q.spot for q in quotes]),
        np.array([q.strike for q in quotes]),
        np.array([q.years for q in quotes]),
        0.04,
        rng.uniform(0.15, 0.6, OPTIONS),
        np.array([q.is_call for q in quotes]),
    ).round(2)
    ids = securities_ensure(symbols)
    import pandas as pd

    frame = pd.DataFrame({"symbol": symbols, "date": AS_OF, "close": np.maximum(closes, 0.01)})
    frame["security_id"] = frame["symbol"].map(ids)
    prices_upsert(
        frame.drop_duplicates("security_id"), source="synthetic", fetched_at=timezone.now()
    )
    options = Position.objects.filter(portfolio=portfolio).count()

    seconds, report = harness.timed(
        lambda: greeks_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk])
    )
    assert report.written == options and PositionGreeks.objects.count() == options
    rerun, _ = harness.timed(lambda: greeks_compute(as_of=AS_OF, portfolio_ids=[portfolio.pk]))
    assert PositionGreeks.objects.count() == options
    value_s, _ = harness.timed(lambda: positions_value(as_of=AS_OF, portfolio_ids=[portfolio.pk]))

    from marketdata.models import DailyPrice

    def one_by_one() -> None:
        for position in Position.objects.filter(portfolio=portfolio).order_by("id")[:SLICE]:
            underlying = float(
                DailyPrice.objects.get(
                    security__symbol=position.underlying_symbol, date=AS_OF
                ).close
            )
            close = float(
                DailyPrice.objects.get(security__symbol=position.symbol, date=AS_OF).close
            )
            years = (position.expiration - AS_OF).days / 365
            is_call = position.option_type == "C"
            vol = float(
                bs.implied_volatility(
                    close, underlying, float(position.strike), years, 0.04, is_call
                ).sigma
            )
            g = bs.greeks(underlying, float(position.strike), years, 0.04, vol, is_call)
            units = float(position.quantity) * 100
            PositionGreeks.objects.update_or_create(
                position=position,
                date=AS_OF,
                defaults={
                    "delta": float(g.delta) * units,
                    "gamma": float(g.gamma) * units,
                    "theta": float(g.theta) * units,
                    "vega": float(g.vega) * units,
                    "rho": float(g.rho) * units,
                    "dollar_delta": float(g.delta) * units * underlying,
                    "implied_volatility": vol,
                    "volatility": vol,
                    "volatility_source": "implied",
                    "underlying_price": underlying,
                    "model_price": float(g.price),
                    "risk_free_rate": 0.04,
                    "days_to_expiry": int(years * 365),
                    "computed_at": timezone.now(),
                },
            )

    loop_s, _ = harness.timed(one_by_one)
    return {
        "vendor": connection.vendor,
        "options": options,
        "compute_s": seconds,
        "rerun_s": rerun,
        "value_s": value_s,
        "per_position_s": loop_s / SLICE,
        "sources": report.sources,
    }


def main() -> None:
    results = harness.run("bench.bench_greeks_compute")
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 8))
            continue
        loop_total = r["per_position_s"] * r["options"]
        rows.append(
            [
                r["backend"],
                r["options"],
                r["compute_s"],
                "yes" if r["compute_s"] < TARGET_S else "NO",
                r["rerun_s"],
                r["value_s"],
                loop_total,
                f"{loop_total / r['compute_s']:.0f}x",
            ]
        )
    harness.print_table(
        f"Greeks job end to end: {OPTIONS:,} option positions, target < {TARGET_S:g} s",
        [
            "backend",
            "options",
            "greeks_compute s",
            "target met",
            "re-run s",
            "positions_value s",
            f"per-position loop s (x{SLICE} measured, scaled)",
            "batched vs loop",
        ],
        rows,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
