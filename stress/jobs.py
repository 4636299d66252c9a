"""The stress app's job of a trading day: every active library scenario for every book, after
the analytics jobs it reads (factor betas, Greeks). Declared in StressConfig.ready."""

from __future__ import annotations

from datetime import date

from analytics.jobs import Job, declare
from analytics.selectors import ReadCache
from sigmasight.exceptions import InsufficientHistory
from stress.services import stress_prepare, stress_session_prepare, stress_write


def _stress(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    try:
        inputs = stress_prepare(
            as_of=as_of, portfolio_ids=portfolio_ids, reads=reads, store_correlation=False
        )
        written = stress_write(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads, inputs=inputs)
    except InsufficientHistory as exc:  # no factor model for the session: the data, not a failure
        return {"results": 0, "warnings": {pk: [f"stress: {exc.message}"] for pk in portfolio_ids}}
    warnings = {
        pk: ["stress: the factors job had no betas for this book; computed for the stress run"]
        for pk in inputs.betas_computed_for
    }
    return {"results": written, "warnings": warnings}


def declare_jobs() -> None:
    # The plan's 10 minutes per chunk.
    declare(Job("stress", 60, _stress, 10 * 60, "stress", prepare=stress_session_prepare))
