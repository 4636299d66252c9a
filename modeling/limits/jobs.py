"""The modeling app's jobs of a trading day: the risk limits evaluated on the stored results of
the session (after the snapshots and the stress run they read), then the users' alert digests.
Declared in ModelingConfig.ready."""

from __future__ import annotations

from datetime import date

from analytics.jobs import Job, declare
from analytics.selectors import ReadCache
from modeling.limits.evaluate import limits_evaluate


def _limits(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    return limits_evaluate(as_of=as_of, portfolio_ids=portfolio_ids, reads=reads)


def _alerts(as_of: date, portfolio_ids: list[int], reads: ReadCache | None) -> dict:
    from modeling.limits.delivery import alerts_send

    return alerts_send(as_of=as_of, portfolio_ids=portfolio_ids)


def declare_jobs() -> None:
    declare(Job("limits", 70, _limits, 5 * 60, "limits"))
    declare(Job("alerts", 75, _alerts, 5 * 60, "limits"))
