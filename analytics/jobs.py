"""The jobs of a trading day (DESIGN.md's table). Each app declares its own jobs where it lives
(`declare`: name, place in the day, soft time limit, trigger group, chunk function);
analytics.batch runs whatever is declared, in chunks, with their job rows, retries and claims.

A chunk function takes (session, portfolio ids, read cache) and returns its counts, the
portfolios that failed (`failed_portfolios`) and what was not computed in a job that still
succeeded (`warnings`: portfolio id -> reasons). The read cache is None for a job that writes
what it reads (`writes_inputs`): it must read fresh."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core import checks
from django.db import connection
from django.db.models import Model, Q

from analytics.models import (
    FactorDefinition,
    PositionFactorExposure,
    PositionGreeks,
    PositionInterestRateBeta,
)
from analytics.risk_metrics import risk_metrics_compute
from analytics.risk_services import factors_compute, ir_betas_compute, scenarios_compute
from analytics.selectors import ReadCache
from analytics.services import greeks_compute, positions_value
from analytics.snapshots import snapshots_take
from marketdata import calendar
from marketdata.corporate_actions import corporate_actions_fetch
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.services import (
    dividend_yields_fetch_and_cache,
    prices_fetch_and_cache,
    sectors_fetch_and_cache,
)
from marketdata.symbols import looks_like_occ
from portfolios.corporate_actions import corporate_actions_apply
from portfolios.models import Position

ChunkFunction = Callable[[date, list[int], ReadCache | None], dict]
# The staff triggers (API.md: POST /admin/batch/{trigger}/): each job belongs to one, "all" runs
# every job. "market-data" runs corporate_actions, then market_data.
TRIGGERS = ("market-data", "risk-metrics", "snapshots", "stress", "limits", "all")


@dataclass(frozen=True)
class Job:
    """A job of the trading day, declared by the app it belongs to."""

    name: str
    order: int  # its place in the day: each job needs the ones with a lower order
    run: ChunkFunction
    soft_time_limit_s: int  # per chunk; SIGMASIGHT_BATCH_TIME_LIMIT_<NAME> overrides
    trigger: str  # the staff trigger that runs it (one of TRIGGERS)
    writes_inputs: bool = False  # writes what it (or a later step in it) reads: no read cache
    # Run once per run of the job, before its chunks, in its own transaction: what every chunk
    # would otherwise write again (and lock against its siblings), e.g. the session's stress
    # correlation. Chunks must still work without it (they compute what is missing).
    prepare: Callable[[date], None] | None = None
    # The tables it fills for the session that later jobs read by session: on PostgreSQL each is
    # analyzed once the job's chunks are done (`batch.job_close`). Without it the planner takes
    # the session's date for one beyond its statistics (about one row) and reads the whole
    # session's rows for every chunk (0.5 s a chunk at 10,000 positions, against 0.04 s).
    analyze: tuple[type[Model], ...] = ()


# Every declared job by name (analytics' at import, the others' in their AppConfig.ready).
JOBS: dict[str, Job] = {}


def declare(job: Job) -> Job:
    if job.trigger not in TRIGGERS or job.trigger == "all":
        raise ValueError(f"Job {job.name}: trigger must be one of {TRIGGERS[:-1]}.")
    if any(j.order == job.order and j.name != job.name for j in JOBS.values()):
        raise ValueError(f"Job {job.name}: another job has order {job.order}.")
    JOBS[job.name] = job
    return job


def job_analyze(name: str) -> None:
    """On PostgreSQL, fresh statistics for the tables the job filled for the session (its
    declared `analyze`): a sample of each table, about 0.1 s whatever its size."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in JOBS[name].analyze:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def daily() -> list[str]:
    """The declared jobs in the order of a trading day."""
    return [j.name for j in sorted(JOBS.values(), key=lambda j: j.order)]


def time_limit(name: str) -> int:
    """A job's soft time limit per chunk in seconds: the setting's override or the declaration."""
    return int(settings.SIGMASIGHT_BATCH_TIME_LIMITS.get(name, JOBS[name].soft_time_limit_s))


def _market_data(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    held = Position.objects.filter(portfolio_id__in=portfolio_ids, closed_at__isnull=True)
    symbols = set(held.values_list("symbol", flat=True)) | set(
        held.values_list("underlying_symbol", flat=True)
    )
    proxies = set(
        FactorDefinition.objects.filter(is_active=True)
        .exclude(etf_proxy="")
        .values_list("etf_proxy", flat=True)
    )
    start = calendar.sessions_back(as_of, settings.SIGMASIGHT_FACTOR_WINDOW + 5)[0]
    report = prices_fetch_and_cache(
        symbols=sorted(symbols | proxies | {RATE_10Y, RATE_SHORT}), start=start, end=as_of
    )
    names = sorted(s for s in symbols if not looks_like_occ(s))
    sectors_fetch_and_cache(symbols=names)
    # The held names' dividend yields for the session (the Greeks job prices with them).
    yields = dividend_yields_fetch_and_cache(symbols=names, as_of=as_of)
    valued = positions_value(as_of=as_of, portfolio_ids=portfolio_ids)
    # A held symbol still lacking sessions after every provider. When a provider failed for it
    # (timeouts, malformed answers) the portfolio is reported failed, so the job ends partial
    # (and is retried when the failure may pass). When no source has it (an unknown symbol, a
    # hole in a user's own series, the csv source) that is the data, not a failure: the
    # portfolio is valued from the last close (stale) and the job says so in its warnings.
    failed: dict[int, str] = {}
    warnings: dict[int, list[str]] = {}
    for portfolio_id, symbol, underlying in held.filter(
        Q(symbol__in=report.gaps.keys()) | Q(underlying_symbol__in=report.gaps.keys())
    ).values_list("portfolio_id", "symbol", "underlying_symbol"):
        for gone in dict.fromkeys(s for s in (symbol, underlying) if s in report.gaps):
            if gone in report.errors:
                failed[portfolio_id] = (
                    f"no price for {gone} from any provider ({report.errors[gone]}); "
                    "valued from the cache (stale)"
                )[:500]
            else:
                warnings.setdefault(portfolio_id, []).append(
                    _gap_text(gone, report.gaps[gone], as_of)
                )
    result = {
        "rows_written": report.rows_written,
        "positions_valued": valued.written,
        "missing_prices": len(valued.missing_prices),
        "dividend_yields_stored": sum(yields.stored.values()),
        "failed_portfolios": failed,
        "warnings": warnings,
    }
    if failed and report.transient:
        # Prices are missing because providers struggled (not because the data is bad): worth
        # asking again later. What was fetched is kept; a retry only asks for what is missing.
        result["retry_reason"] = "; ".join(report.transient.values())[:500]
    return result


def _gap_text(symbol: str, sessions: list[date], as_of: date) -> str:
    """What a held series lacks: its missing sessions (the first few), stale or not today."""
    shown = ", ".join(d.isoformat() for d in sessions[:5])
    more = f" and {len(sessions) - 5} more" if len(sessions) > 5 else ""
    today = (
        " (no close on the session: valued from its last close, stale)" if as_of in sessions else ""
    )
    return f"{symbol} has no close on {len(sessions)} session(s): {shown}{more}{today}"


def _greeks(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    report = greeks_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    result: dict = {
        "options": report.written,
        **{f"source_{k}": v for k, v in report.sources.items()},
    }
    if report.without_yield:
        # American contracts priced with a yield of 0: their early exercise may be misjudged.
        result["without_dividend_yield"] = len(report.without_yield)
        warnings: dict[int, list[str]] = {}
        held = Position.objects.filter(
            portfolio_id__in=portfolio_ids,
            closed_at__isnull=True,
            underlying_symbol__in=report.without_yield,
        ).exclude(option_type="")
        for portfolio_id, symbol in (
            held.values_list("portfolio_id", "underlying_symbol")
            .distinct()
            .order_by("portfolio_id", "underlying_symbol")
        ):
            warnings.setdefault(portfolio_id, []).append(
                f"no dividend yield for {symbol}: its American options priced with 0"
            )
        result["warnings"] = warnings
    return result


def _factors(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    report = factors_compute(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    ir_betas_compute(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    warnings: dict[int, list[str]] = {}
    if report.without_beta:
        held = (
            Position.objects.filter(
                portfolio_id__in=portfolio_ids,
                closed_at__isnull=True,
                underlying_symbol__in=report.without_beta.keys(),
            )
            .values_list("portfolio_id", "underlying_symbol")
            .distinct()
        )
        for portfolio_id, symbol in held.order_by("portfolio_id", "underlying_symbol"):
            warnings.setdefault(portfolio_id, []).append(
                f"no factor betas for {symbol}: {report.without_beta[symbol]}"[:300]
            )
    if report.left_out:
        for portfolio_id in portfolio_ids:
            warnings.setdefault(portfolio_id, []).append(
                "factors left out of the model: "
                + "; ".join(f"{k} ({v})" for k, v in report.left_out.items())
            )
    return {
        "positions_with_beta": report.with_beta,
        "positions_without_beta": len(report.without_beta),
        "warnings": warnings,
    }


def _market_risk(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    metrics = risk_metrics_compute(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    scenarios = scenarios_compute(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    return {
        "scenario_rows": scenarios,
        "metric_rows": metrics["rows"],
        "warnings": {pk: [why] for pk, why in metrics["skipped"].items()},
    }


def _snapshots(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    return {"snapshots": snapshots_take(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)}


# The soft limits are the plan's 5, 10, 15 and 5 minutes; stress (the stress app) declares its own.
declare(
    Job(
        "market_data",
        10,
        _market_data,
        5 * 60,
        "market-data",
        writes_inputs=True,
        analyze=(DailyPrice,),
    )
)
declare(
    Job(
        "greeks",
        20,
        _greeks,
        10 * 60,
        "risk-metrics",
        writes_inputs=True,
        analyze=(PositionGreeks,),
    )
)
declare(
    Job(
        "factors",
        30,
        _factors,
        15 * 60,
        "risk-metrics",
        analyze=(PositionFactorExposure, PositionInterestRateBeta),
    )
)
declare(Job("market_risk", 40, _market_risk, 5 * 60, "risk-metrics"))
declare(Job("snapshots", 50, _snapshots, 5 * 60, "snapshots"))


@checks.register()
def time_limit_overrides(app_configs: object = None, **kwargs: object) -> list[checks.Error]:
    """SIGMASIGHT_BATCH_TIME_LIMIT_<JOB> for a job nobody declares is a typo, not a setting."""
    unknown = sorted(set(settings.SIGMASIGHT_BATCH_TIME_LIMITS) - set(JOBS))
    return [
        checks.Error(
            f"SIGMASIGHT_BATCH_TIME_LIMIT_{name.upper()} names no batch job.",
            hint=f"Jobs: {', '.join(daily())}.",
            id="sigmasight.E101",
        )
        for name in unknown
    ]


def _corporate_actions(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    """Before the day's prices: fetch the held names' splits and dividends with the session as
    ex-date (through the provider chain; CSV and admin entries are already stored) and apply
    them once. When every provider failed, the portfolios holding those names are reported
    failed (a split missed would make the day's P&L jump) and the job is retried."""
    held = Position.objects.filter(portfolio_id__in=portfolio_ids, closed_at__isnull=True)
    symbols = sorted(set(held.values_list("underlying_symbol", flat=True)))
    fetched = corporate_actions_fetch(symbols=symbols, start=as_of, end=as_of)
    report = corporate_actions_apply(as_of=as_of, portfolio_ids=portfolio_ids)
    result: dict = {
        "actions_fetched": fetched.rows,
        "actions": report.actions,
        "actions_applied": report.applied,
        "stock_splits": report.stock_splits,
        "option_splits": report.option_splits,
        "option_deliverables": report.option_deliverables,
        "dividends": report.dividends,
        "prices_adjusted": report.prices_adjusted,
        "warnings": report.warnings,
    }
    if fetched.errors and not fetched.by_source:
        why = "corporate actions not fetched: " + "; ".join(fetched.errors.values())
        holders = sorted(set(held.values_list("portfolio_id", flat=True)))
        result["failed_portfolios"] = dict.fromkeys(holders, why[:500])
        result["retry_reason"] = why[:500]
    return result


declare(Job("corporate_actions", 5, _corporate_actions, 5 * 60, "market-data", writes_inputs=True))


def _attribution(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    """The session's P&L split into factors and specific, options' into their Greeks, from
    what the previous session stored (analytics.attribution)."""
    from analytics.attribution import attribution_compute

    report = attribution_compute(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)
    warnings: dict[int, list[str]] = {}
    if report.without_move and report.positions:
        held = Position.objects.filter(portfolio_id__in=portfolio_ids, closed_at__isnull=True)
        why = "factors without a move on the session (their P&L counted specific): " + ", ".join(
            report.without_move
        )
        for portfolio_id in sorted(set(held.values_list("portfolio_id", flat=True))):
            warnings[portfolio_id] = [why[:300]]
    return {
        "positions_attributed": report.positions,
        "positions_without_yesterday": report.without_yesterday,
        "options_explained": report.options_explained,
        "options_without_greeks": report.options_without_greeks,
        "positions_unvalued": report.unvalued,
        "warnings": warnings,
    }


# After the factor exposures (it reads the previous session's), before the market risk.
declare(Job("attribution", 35, _attribution, 5 * 60, "risk-metrics"))


def _retention(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    """Position-level results older than the retention deleted (analytics.retention)."""
    from analytics.retention import position_results_prune

    pruned = position_results_prune(as_of=as_of, portfolio_ids=portfolio_ids)
    return {"rows_pruned": sum(pruned.rows.values())}


# Last of the evening: everything that reads the older sessions has run.
declare(Job("retention", 90, _retention, 10 * 60, "snapshots"))
