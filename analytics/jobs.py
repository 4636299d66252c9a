"""The jobs of a trading day (DESIGN.md's table), each a function of (session, portfolio ids)
returning its counts, the portfolios that failed (`failed_portfolios`) and what was not computed
in a job that still succeeded (`warnings`: portfolio id -> reasons). analytics.batch runs them in
chunks, with their job rows, retries and claims."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.db.models import Q

from marketdata import calendar


def _market_data(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.models import FactorDefinition
    from analytics.services import positions_value
    from marketdata.providers.base import RATE_10Y, RATE_SHORT
    from marketdata.services import prices_fetch_and_cache, sectors_fetch_and_cache
    from marketdata.symbols import looks_like_occ
    from portfolios.models import Position

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
    sectors_fetch_and_cache(symbols=sorted(s for s in symbols if not looks_like_occ(s)))
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
    result = {"rows_written": report.rows_written, "positions_valued": valued.written,
              "missing_prices": len(valued.missing_prices), "failed_portfolios": failed,
              "warnings": warnings}  # fmt: skip
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


def _greeks(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.services import greeks_compute

    report = greeks_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    return {"options": report.written, **{f"source_{k}": v for k, v in report.sources.items()}}


def _factors(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.risk_services import factors_compute, ir_betas_compute
    from portfolios.models import Position

    report = factors_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    ir_betas_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    warnings: dict[int, list[str]] = {}
    if report.without_beta:
        held = Position.objects.filter(
            portfolio_id__in=portfolio_ids, closed_at__isnull=True,
            underlying_symbol__in=report.without_beta.keys(),
        ).values_list("portfolio_id", "underlying_symbol").distinct()  # fmt: skip
        for portfolio_id, symbol in held.order_by("portfolio_id", "underlying_symbol"):
            warnings.setdefault(portfolio_id, []).append(
                f"no factor betas for {symbol}: {report.without_beta[symbol]}"[:300]
            )
    if report.left_out:
        for portfolio_id in portfolio_ids:
            warnings.setdefault(portfolio_id, []).append(
                "factors left out of the model: " + "; ".join(f"{k} ({v})" for k, v in report.left_out.items())
            )  # fmt: skip
    return {
        "positions_with_beta": report.with_beta,
        "positions_without_beta": len(report.without_beta),
        "warnings": warnings,
    }


def _market_risk(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.risk_metrics import risk_metrics_compute
    from analytics.risk_services import scenarios_compute

    metrics = risk_metrics_compute(as_of=as_of, portfolio_ids=portfolio_ids)
    return {"scenario_rows": scenarios_compute(as_of=as_of, portfolio_ids=portfolio_ids),
            "metric_rows": metrics["rows"],
            "warnings": {pk: [why] for pk, why in metrics["skipped"].items()}}  # fmt: skip


def _snapshots(as_of: date, portfolio_ids: list[int]) -> dict:
    from analytics.snapshots import snapshots_take

    return {"snapshots": snapshots_take(as_of=as_of, portfolio_ids=portfolio_ids)}


def _stress(as_of: date, portfolio_ids: list[int]) -> dict:
    from sigmasight.exceptions import InsufficientHistory
    from stress.services import stress_run

    try:
        return {"results": len(stress_run(as_of=as_of, portfolio_ids=portfolio_ids))}
    except InsufficientHistory as exc:  # no factor model for the session: the data, not a failure
        return {"results": 0, "warnings": {pk: [f"stress: {exc.message}"] for pk in portfolio_ids}}


JOBS: dict[str, Callable[[date, list[int]], dict]] = {
    "market_data": _market_data,
    "greeks": _greeks,
    "factors": _factors,
    "market_risk": _market_risk,
    "snapshots": _snapshots,
    "stress": _stress,
}
# The order of a trading day (DESIGN.md): each job needs the ones before it.
DAILY = list(JOBS)
# Jobs that write what they (or their own later steps) read: no shared reads within a chunk.
WRITES_INPUTS = {"market_data", "greeks"}
