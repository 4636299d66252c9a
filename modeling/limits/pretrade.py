"""The pre-trade check of a what-if session (issue "Risk limits and alerts"): where every active
limit of the session's portfolio (its own and the owner's limits on all portfolios) stands before
and after the session's trades, or before and after a hedge, so a manager sees a breach before
trading.

Every measure is `modeling.limits.spec`'s, read from the two books and the states the what-if has
already computed (no VaR, ES or stress is recomputed here):

- gross/net/long/short_exposure: the state's exposures, signed as it shows them (short < 0).
- beta: the state's portfolio beta to the Market factor (`factor_betas`).
- delta, dollar_delta, gamma, vega: the state's Greeks, summed over the book.
- var: the state's one-day row at the limit's confidence (historical `var_historical`,
  parametric `var_parametric`, Monte Carlo `var_monte_carlo`), scaled to `horizon_days` by the
  square root of time (`scale_to_horizon`, as the batch scales).
- es: historical `expected_shortfall`; parametric the normal ES of the same sigma,
  VaR x phi(z) / ((1 - c) z); Monte Carlo `es_monte_carlo`, the tail mean of the same draws.
- stress_loss: minus the correlated P&L of the named scenario in the state's stress list.
- name_concentration: a name's (underlying's) gross over the book's gross, the largest name's
  without `name`; sector_concentration the same by the underlyings' stored sectors
  (`analytics.calculations.liquidity`, as the concentration report computes them).
- days_to_liquidate: the book's slowest position, |delta| shares over participation x ADV
  (`analytics.liquidity`'s rules); unknown when any position's is.
- drawdown: the stored snapshots' highest equity to the session date less the latest one's.
  Trades made today cannot move it: the after side is the before side.

In `share_of_equity` a money measure is divided by its side's equity (drawdown: the before
side's, on both sides). A value that cannot be computed is null, with a null level and the
reason; otherwise the level is "pass", "warning" or "hard" (`spec.level_of`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q
from scipy import stats

from analytics import liquidity
from analytics.calculations import liquidity as calc
from analytics.calculations.factors import MARKET
from analytics.calculations.risk import scale_to_horizon
from analytics.models import PortfolioSnapshot
from modeling import book as engine
from modeling.limit_models import Limit
from modeling.limits.spec import LEVELS, level_of, limit_errors, normalized_params

PASS = "pass"
EXPOSURES = {
    "gross_exposure": "gross",
    "net_exposure": "net",
    "long_exposure": "long",
    "short_exposure": "short",
}
GREEKS = ("delta", "dollar_delta", "gamma", "vega")
VAR_KEYS = {
    "historical": "var_historical",
    "parametric": "var_parametric",
    "monte_carlo": "var_monte_carlo",
}
UNMOVED = ("drawdown",)  # measured on stored history: today's trades leave it where it is


@dataclass(frozen=True)
class Found:
    """A measure's value in its own unit (money for the money measures), or why it is unknown."""

    value: float | None
    reason: str | None = None


def _found(value: Any, reason: str) -> Found:
    if value is None or not math.isfinite(float(value)):
        return Found(None, reason)
    return Found(float(value))


@dataclass(frozen=True)
class Reads:
    """What both sides share, read once per check: the underlyings' ADV (shares per session,
    NaN unknown) and stored sectors, and the portfolio's drawdown."""

    adv: dict[str, float]
    sectors: dict[str, str]
    drawdown: Found


def _reads(measures: set[str], books: Sequence[engine.Book], ctx: engine.Context) -> Reads:
    underlyings = sorted({str(u) for b in books for u in b.frame["underlying_symbol"]})
    adv: dict[str, float] = {}
    if "days_to_liquidate" in measures:
        panel = liquidity.volumes_panel(underlyings, ctx.as_of)
        volume = calc.average_daily_volume(
            panel.to_numpy(dtype=float), min_observations=liquidity.MIN_VOLUMES
        )
        adv = dict(zip(underlyings, volume.adv.tolist(), strict=True))
    sectors: dict[str, str] = {}
    if "sector_concentration" in measures:
        sectors = {s: c[0] for s, c in liquidity.classifications(underlyings).items()}
    drawdown = _drawdown(ctx) if "drawdown" in measures else Found(None)
    return Reads(adv=adv, sectors=sectors, drawdown=drawdown)


def _drawdown(ctx: engine.Context) -> Found:
    """The fall from the highest stored equity to the latest, on or before the session date."""
    equity = np.array(
        PortfolioSnapshot.objects.filter(portfolio_id=ctx.portfolio_id, date__lte=ctx.as_of)
        .order_by("date")
        .values_list("equity", flat=True),
        dtype=float,
    )
    if not len(equity):
        return Found(None, f"no stored snapshot of the portfolio on or before {ctx.as_of}")
    return Found(float(equity.max() - equity[-1]))


class Side:
    """One book and its state (before or after), measured."""

    def __init__(self, book: engine.Book, state: dict, reads: Reads) -> None:
        self.book, self.state, self.reads = book, state, reads
        self.underlyings = book.frame["underlying_symbol"].astype(str).tolist()
        self.exposure = book.frame["exposure"].to_numpy(dtype=float)

    @cached_property
    def equity(self) -> float:
        return float(self.state["equity"])

    def measure(self, measure: str, params: dict[str, Any]) -> Found:
        if measure in EXPOSURES:
            return Found(float(self.state["exposures"][EXPOSURES[measure]]))
        if measure in GREEKS:
            return _found(self.state["greeks"].get(measure), f"the book's {measure} is unknown")
        handler: Callable[[Side, dict[str, Any]], Found] = HANDLERS[measure]
        return handler(self, params)

    def beta(self, params: dict[str, Any]) -> Found:
        betas = self.state["factor_betas"]
        if MARKET not in betas:
            return Found(None, f"the factor model has no {MARKET} factor")
        return _found(
            betas[MARKET], "the book's betas are undefined (no equity or gross to normalize by)"
        )

    def risk(self, params: dict[str, Any], *, es: bool) -> Found:
        method, confidence = params["method"], float(params["confidence"])
        row = next(
            (r for r in self.state["var"] if math.isclose(r["confidence"], confidence)), None
        )
        if row is None:
            known = ", ".join(f"{r['confidence']:g}" for r in self.state["var"])
            return Found(None, f"the what-if measures VaR and ES at {known} only")
        if row.get("error"):
            return Found(None, row["error"])
        key = VAR_KEYS[method]
        if es and method != "parametric":
            key = "expected_shortfall" if method == "historical" else "es_monte_carlo"
        unavailable = row.get("unavailable") or {}
        reason = unavailable.get(key) or unavailable.get(VAR_KEYS[method]) or f"{key} is unknown"
        found = _found(row.get(key), reason)
        if found.value is None:
            return found
        value = found.value
        if es and method == "parametric":
            z = float(stats.norm.ppf(confidence))
            value *= float(stats.norm.pdf(z)) / ((1.0 - confidence) * z)
        return Found(float(scale_to_horizon(value, params["horizon_days"])))

    def stress_loss(self, params: dict[str, Any]) -> Found:
        name = params["scenario"]
        row = next((r for r in self.state["stress"] if r["scenario"] == name), None)
        if row is None:
            why = self.state.get("stress_error") or f"no active stress scenario named {name!r}"
            return Found(None, why)
        pnl = row["correlated_pnl"]
        return _found(None if pnl is None else -pnl, f"the P&L of {name!r} is unknown")

    @cached_property
    def names(self) -> calc.NameConcentration:
        return calc.name_concentration(self.underlyings, self.exposure)

    def name_concentration(self, params: dict[str, Any]) -> Found:
        names = self.names
        if names.total == 0:
            return Found(None, "the book has no gross exposure")
        if "name" not in params:
            return Found(float(names.weights[0]))
        key = params["name"].strip().upper()
        return Found(float(names.weights[names.keys.index(key)]) if key in names.keys else 0.0)

    @cached_property
    def sectors(self) -> calc.GroupExposures:
        keys = [self.reads.sectors.get(u, liquidity.UNCLASSIFIED) for u in self.underlyings]
        return calc.group_exposures(keys, self.exposure)

    def sector_concentration(self, params: dict[str, Any]) -> Found:
        sectors = self.sectors
        if not len(sectors.keys) or not np.isfinite(sectors.share).all():
            return Found(None, "the book has no gross exposure")
        if "sector" not in params:
            return Found(float(sectors.share[0]))
        wanted = params["sector"].strip().casefold()
        found = [
            s for k, s in zip(sectors.keys, sectors.share, strict=True) if k.casefold() == wanted
        ]
        return Found(float(found[0]) if found else 0.0)

    def days_to_liquidate(self, params: dict[str, Any]) -> Found:
        frame = self.book.frame
        if not len(frame):
            return Found(0.0)
        adv = np.array([self.reads.adv.get(u, np.nan) for u in self.underlyings], dtype=float)
        shares = np.abs(frame["delta"].to_numpy(dtype=float))
        days = calc.days_to_liquidate(shares, adv, settings.SIGMASIGHT_LIQUIDITY_PARTICIPATION)
        days = np.where(shares == 0, 0.0, days)  # nothing to sell: liquid at once
        unknown = np.flatnonzero(~np.isfinite(days))
        if len(unknown):
            # The reasons of the liquidity report, in its order.
            why = np.select(
                [np.isnan(shares), np.isnan(adv), adv == 0],
                [
                    liquidity.MISSING_GREEKS,
                    liquidity.INSUFFICIENT_VOLUME,
                    liquidity.NO_TRADED_VOLUME,
                ],
                default=liquidity.BEYOND_RANGE,
            )[unknown[0]]
            return Found(
                None,
                f"days to liquidate unknown for {len(unknown)} position(s), "
                f"{frame['symbol'].iloc[unknown[0]]} first: {liquidity.REASONS[str(why)]}",
            )
        return Found(float(days.max()))

    def drawdown(self, params: dict[str, Any]) -> Found:
        return self.reads.drawdown


HANDLERS: dict[str, Callable[[Side, dict[str, Any]], Found]] = {
    "beta": Side.beta,
    "var": lambda side, params: side.risk(params, es=False),
    "es": lambda side, params: side.risk(params, es=True),
    "stress_loss": Side.stress_loss,
    "name_concentration": Side.name_concentration,
    "sector_concentration": Side.sector_concentration,
    "days_to_liquidate": Side.days_to_liquidate,
    "drawdown": Side.drawdown,
}


def _where(limit: Limit, params: dict[str, Any], side: Side) -> dict:
    """The limit's value on one side in its unit, and its level."""
    found = side.measure(limit.measure, params)
    value, reason = found.value, found.reason
    if value is not None and limit.unit == Limit.Unit.SHARE_OF_EQUITY:
        if side.equity > 0:
            value = value / side.equity
        else:
            value, reason = None, f"the book's equity ({side.equity:.2f}) is not positive"
    if value is None:
        return {"value": None, "level": None, "reason": reason}
    level = level_of(limit.bound, limit.warning, limit.hard, value).level
    return {"value": value, "level": level or PASS, "reason": None}


def _invalid(limit: Limit) -> str | None:
    """Why a stored limit cannot be applied (rows written around the API's validation)."""
    errors = limit_errors(
        {
            "measure": limit.measure,
            "params": limit.params,
            "bound": limit.bound,
            "unit": limit.unit,
            "warning": limit.warning,
            "hard": limit.hard,
        }
    )
    if not errors:
        return None
    return "the limit is not valid: " + "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in errors.items()
    )


def limits_check(
    owner_id: int,
    ctx: engine.Context,
    before: tuple[engine.Book, dict],
    after: tuple[engine.Book, dict],
) -> list[dict]:
    """Every active limit of the context's portfolio (its own and the owner's on all portfolios),
    in id order, with its value and level `before` and `after` (each a book and its state as
    `engine.state` gives it, JSON-clean). JSON-clean rows."""
    limits = list(
        Limit.objects.filter(
            Q(portfolio_id=ctx.portfolio_id) | Q(portfolio__isnull=True),
            owner_id=owner_id,
            is_active=True,
        ).order_by("id")
    )
    if not limits:
        return []
    reads = _reads({limit.measure for limit in limits}, [before[0], after[0]], ctx)
    sides = Side(*before, reads), Side(*after, reads)
    rows = []
    for limit in limits:
        invalid = _invalid(limit)
        given = limit.params if isinstance(limit.params, dict) else {}
        params = normalized_params(limit.measure, given)
        if invalid:
            was = now = {"value": None, "level": None, "reason": invalid}
        else:
            was = _where(limit, params, sides[0])
            now = was if limit.measure in UNMOVED else _where(limit, params, sides[1])
        rows.append(
            {
                "limit": limit.pk,
                "name": str(limit),
                "measure": limit.measure,
                "params": params,
                "bound": limit.bound,
                "unit": limit.unit,
                "warning": limit.warning,
                "hard": limit.hard,
                "before": was,
                "after": dict(now),
            }
        )
    return rows


def limits_cleared(rows: list[dict]) -> list[int]:
    """Mark each row of a hedge's check `cleared` (beyond a level before, back to pass after)
    and return the ids of the limits cleared."""
    for row in rows:
        row["cleared"] = row["before"]["level"] in LEVELS and row["after"]["level"] == PASS
    return [row["limit"] for row in rows if row["cleared"]]
