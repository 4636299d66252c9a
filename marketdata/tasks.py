from __future__ import annotations

import logging
from datetime import date

from celery import shared_task

from marketdata.services import prices_fetch_and_cache, sectors_fetch_and_cache

logger = logging.getLogger("sigmasight.market_data")


@shared_task(name="marketdata.refresh_prices", soft_time_limit=300, time_limit=360)
def refresh_prices(symbols: list[str], start: str, end: str) -> dict[str, object]:
    """Fetch and cache prices (and missing sectors) for symbols over an ISO date range."""
    report = prices_fetch_and_cache(
        symbols=symbols, start=date.fromisoformat(start), end=date.fromisoformat(end)
    )
    sectors = sectors_fetch_and_cache(symbols=symbols)
    logger.info(
        "prices refreshed",
        extra={"rows": report.rows_written, "missing": report.missing, "sectors": sectors},
    )
    return {
        "rows_written": report.rows_written,
        "rows_by_source": report.rows_by_source,
        "failures": report.failures,
        "missing": report.missing,
        "sectors_updated": sectors,
    }
