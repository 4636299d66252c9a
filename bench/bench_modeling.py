"""What-if calculate on a 1,000-position book (40% options, 300 underlyings) with 20 pro-forma
trades (stocks and options, held and new names), a year of synthetic prices cached and the day's
batch run: before, after and change for exposures, Greeks, factor betas, market and rate
scenarios, every library stress scenario and VaR (Monte Carlo 10,000 draws). Target: under 1 s.

Beside it, measured in the same run: the after state computed from scratch (every closes panel
read from the database and every row revalued in the Monte Carlo, instead of the session's frozen
closes and base P&L), and what the numbers cost without modeling: booking the 20 trades as
positions and re-running the batch's per-portfolio jobs for the book (market data valuation,
Greeks, factors, market risk, stress)."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, date, datetime

from bench import harness

POSITIONS = 1_000
TRADES = 20
ROOTS = 300
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EXPIRY = "2027-03-19"
TARGET_S = 1.0
REPEATS = 5
JOBS = ("market_data", "greeks", "factors", "market_risk", "stress")


def _book_csv(spot: dict[str, float], roots: list[str]) -> bytes:
    lines = ["symbol,quantity,entry_price,entry_date,option_type,strike,expiration"]
    for n in range(POSITIONS):
        root = roots[n % ROOTS]
        if n % 5 < 2:  # 40% options
            strike = round(spot[root] * (0.85 + 0.03 * (n % 10)), 0)
            right = "CP"[(n // ROOTS) % 2]
            lines.append(
                f"{root},{(-1) ** n * 3},5,2026-{1 + n // ROOTS:02d}-05,{right},{strike},{EXPIRY}"
            )
        else:
            lines.append(
                f"{root},{(-1) ** (n // 7) * (40 + n % 60)},50,2026-{1 + n // ROOTS:02d}-05,,,"
            )
    return ("\n".join(lines) + "\n").encode()


def _trades(spot: dict[str, float], roots: list[str]) -> list[dict]:
    """12 stock trades (6 held names, 6 new), 8 option trades (new strikes on held names)."""
    trades = []
    for k in range(6):
        trades.append({"symbol": roots[k * 7], "quantity": str(25 * (k + 1) * (-1) ** k)})
        trades.append({"symbol": f"N{k:03d}", "quantity": str(50 + 10 * k)})
    for k in range(8):
        root = roots[100 + k * 11]
        trades.append(
            {
                "symbol": root,
                "quantity": str((-1) ** k * (k + 1)),
                "option_type": "CP"[k % 2],
                "strike": str(round(spot[root] * (0.9 + 0.05 * (k % 4)), 0)),
                "expiration": EXPIRY,
            }
        )
    assert len(trades) == TRADES
    return trades


def worker() -> dict:
    os.environ["SIGMASIGHT_MARKET_DATA_SOURCE"] = "synthetic"
    harness.worker_setup()
    import io

    from django.core.management import call_command
    from django.db import connection

    from analytics import batch
    from analytics.selectors import ReadCache
    from marketdata.providers.synthetic import SyntheticProvider
    from modeling import book as engine
    from modeling import services
    from portfolios.models import Portfolio
    from portfolios.services import positions_import_csv
    from sigmasight.accounts.models import User

    call_command("load_stress_scenarios", stdout=io.StringIO())
    roots = [f"M{i:03d}" for i in range(ROOTS)]
    spot = {
        b.symbol: b.close for b in SyntheticProvider().daily_bars(roots, AS_OF, AS_OF).itertuples()
    }
    user = User.objects.create_user("bench@example.com", "a-long-bench-password")
    portfolio = Portfolio.objects.create(owner=user, name="book", cash=5_000_000)
    positions_import_csv(portfolio=portfolio, raw=_book_csv(spot, roots))
    harness.cache_history(AS_OF, now=NOW)
    for job in batch.daily():
        run = batch.job_run(job, AS_OF, portfolio_ids=[portfolio.pk])
        assert run.status == "succeeded", (job, run.error)

    create_s, session = harness.timed(
        lambda: services.session_create(owner=user, portfolio=portfolio, name="bench", as_of=AS_OF)
    )
    trades = _trades(spot, roots)
    add_s, added = harness.timed(
        lambda: [services.trade_add(session=session, data=t) for t in trades]
    )
    timings = []
    for _ in range(REPEATS):
        seconds, impacts = harness.timed(lambda: services.session_calculate(session=session))
        timings.append(seconds)
    assert impacts["trade_count"] == TRADES
    assert all("error" not in row for row in impacts["after"]["var"]), impacts["after"]["var"]
    assert len(impacts["after"]["stress"]) > 0

    def from_scratch() -> dict:
        """The after state without the session's frozen closes and Monte Carlo P&L."""
        ctx = engine.context_for(
            portfolio_id=portfolio.pk,
            owner_id=user.pk,
            as_of=AS_OF,
            cash=float(portfolio.cash),
            reads=ReadCache(),
        )
        base = engine.book_from_json(session.base_positions, ctx.factors)
        book = base.plus(engine.trades_book(services.engine_trades(added), base, ctx))
        return engine.state(book, ctx)

    scratch_s, _ = harness.timed(from_scratch)

    # Without modeling: book the trades as positions and re-run the day's jobs for the book.
    lines = ["symbol,quantity,entry_price,entry_date,option_type,strike,expiration"]
    for t in trades:
        lines.append(
            f"{t['symbol']},{t['quantity']},1,{AS_OF},{t.get('option_type', '')},"
            f"{t.get('strike', '')},{t.get('expiration', '')}"
        )
    positions_import_csv(portfolio=portfolio, raw=("\n".join(lines) + "\n").encode(), mode="append")
    jobs_s = 0.0
    for job in JOBS:
        seconds, run = harness.timed(
            lambda job=job: batch.job_run(job, AS_OF, portfolio_ids=[portfolio.pk])
        )
        assert run.status == "succeeded", (job, run.error)
        jobs_s += seconds
    return {
        "vendor": connection.vendor,
        "positions": len(session.base_positions),
        "create_s": create_s,
        "add_s": add_s / TRADES,
        "first_s": timings[0],
        "median_s": statistics.median(timings),
        "scratch_s": scratch_s,
        "jobs_s": jobs_s,
    }


def main() -> None:
    results = harness.run("bench.bench_modeling", timeout=1800)
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append(harness.skipped_row(r, 11))
            continue
        rows.append(
            [
                r["backend"],
                r["positions"],
                TRADES,
                r["create_s"],
                r["add_s"],
                r["first_s"],
                r["median_s"],
                "yes" if r["median_s"] < TARGET_S else "NO",
                r["scratch_s"],
                r["jobs_s"],
                f"{r['jobs_s'] / r['median_s']:.1f}x",
            ]
        )
    harness.print_table(
        f"What-if calculate: {POSITIONS:,} positions + {TRADES} trades, before/after/change of every "
        f"measure, target < {TARGET_S:g} s",
        [
            "backend",
            "positions",
            "trades",
            "open session s",
            "add trade s (each)",
            "calculate s (first)",
            f"calculate s (median of {REPEATS})",
            "target met",
            "after from scratch s",
            "book trades + re-run the batch jobs s",
            "calculate vs batch jobs",
        ],
        rows,
    )


if __name__ == "__main__":
    harness.entry(worker, main)
