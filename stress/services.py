"""Stress runs: every scenario for every portfolio of a session, evaluated on whole arrays.

Shocks are raw moves, as people state them: a proxy's own price change ("oil -65%"), a yield
change for Rates (0.01 = +100bp), and for style factors their move relative to the market (as the
factor model defines them). The EWMA covariance of the raw daily moves (lambda from settings)
gives the conditional moves of the factors a scenario does not shock, so a VIX spike alone drags
the market too. Positions' betas: the factor model's Market and style betas, and per macro factor
the coefficient from a regression on [Market, macro] (stored beside the style betas). Because that
coefficient holds the market fixed, it applies to the macro's move beyond what the market
explains: each raw macro move is reduced by the factor's own market beta times the market move,
so a scenario shocking Market and Technology never counts the market twice. (The rate scenarios
of the factor model keep the plain IR beta on yield changes, as specified.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction

from analytics.calculations import factors as fx
from analytics.calculations import risk
from analytics.models import FactorDefinition, PositionFactorExposure
from analytics.risk_services import (
    closes_panel,
    factor_exposure,
    factors_compute,
    factors_left_out,
    ir_betas_compute,
    stored_betas,
)
from analytics.services import book_frame, session_for
from portfolios.models import Portfolio
from sigmasight.db import upsert_rows
from sigmasight.exceptions import InsufficientHistory
from stress.calculations.stress import OptionLegs, conditional_moves, nearest_psd, position_pnl
from stress.models import FactorCorrelation, StressScenario, StressTestResult

logger = logging.getLogger("sigmasight.batch")
MARKET = "Market"
RATES = "Rates"
WORST = 5


@dataclass(frozen=True)
class FactorModel:
    names: list[str]
    moves: pd.DataFrame  # sessions x factors, daily factor moves
    cov: np.ndarray  # EWMA covariance of the raw moves, repaired to PSD
    corr: np.ndarray
    market_beta: np.ndarray  # each factor's own beta to the market (0 for Market and styles)
    left_out: dict[str, str] = field(default_factory=dict)  # factor -> why it is not modeled

    def beyond_market(self, raw: np.ndarray) -> np.ndarray:
        """(S, K) raw moves -> the moves the positions' partial betas apply to: macro moves less
        what their market beta explains of the market move (Frisch-Waugh: a position's macro
        coefficient next to Market is the same for the raw or the residual factor)."""
        raw = np.atleast_2d(raw)
        market = raw[:, self.names.index(MARKET)][:, None]
        return raw - market * self.market_beta[None, :]


def stress_factors() -> list[FactorDefinition]:
    return list(
        FactorDefinition.objects.filter(is_active=True)
        .exclude(etf_proxy="")
        .order_by("display_order", "id")
    )


def factor_model(as_of: date, lookback: int | None = None) -> FactorModel:
    """Raw daily factor moves (Market and macro proxies: their returns; Rates: yield changes;
    styles: residual to the market, as the factor model defines them), their EWMA covariance,
    and each factor's own market beta (to turn a raw move into the move beyond the market)."""
    lookback = lookback or settings.SIGMASIGHT_FACTOR_WINDOW
    factors = stress_factors()
    closes = closes_panel([f.etf_proxy for f in factors], as_of, lookback + 1)
    moves = pd.DataFrame(index=closes.index[1:])
    for f in factors:
        series = closes[f.etf_proxy]
        moves[f.name] = (
            series.diff().iloc[1:] if f.name == RATES else (series / series.shift(1) - 1).iloc[1:]
        )
    # A factor whose proxy has too little history in the window (the style ETFs before
    # 2004-2013, USO before 2006...) is left out, not allowed to empty the whole model.
    left_out = factors_left_out(factors, moves, as_of, lookback, "daily moves")
    if MARKET in left_out:
        moves = moves.iloc[:0, :0]
    moves = moves.drop(columns=[c for c in left_out if c in moves]).dropna(how="any")
    if len(moves) < 20:
        why = f" (left out: {'; '.join(left_out.values())})" if left_out else ""
        raise InsufficientHistory(
            f"Only {len(moves)} sessions of factor history; 20 are needed for the correlation matrix{why}.",
            fields={"sessions": len(moves), "required": 20, "factors_left_out": left_out},
        )
    factors = [f for f in factors if f.name not in left_out]
    styles = [f.name for f in factors if f.factor_type == "style" and f.name != MARKET]
    if styles:
        moves[styles] = fx.residualize(moves[[MARKET, *styles]], market=MARKET)[styles]
    market = moves[MARKET].to_numpy()
    centered = market - market.mean()
    market_beta = np.array([
        0.0 if name == MARKET or name in styles
        else float(centered @ (moves[name].to_numpy() - moves[name].mean()) / (centered @ centered))
        for name in moves.columns
    ])  # fmt: skip
    cov = nearest_psd(risk.ewma_covariance(moves.to_numpy(), lam=settings.SIGMASIGHT_EWMA_LAMBDA))
    return FactorModel(
        names=list(moves.columns),
        moves=moves,
        cov=cov,
        corr=risk.ewma_correlation(cov),
        market_beta=market_beta,
        left_out=left_out,
    )


def correlation_store(as_of: date, model: FactorModel, lookback: int) -> FactorCorrelation:
    row, _ = FactorCorrelation.objects.update_or_create(
        date=as_of, lookback=lookback, lam=settings.SIGMASIGHT_EWMA_LAMBDA,
        defaults={"factors": model.names, "matrix": model.corr.tolist(), "covariance": model.cov.tolist()},
    )  # fmt: skip
    return row


@dataclass(frozen=True)
class StressPnl:
    dollar: np.ndarray  # (P, K) dollar factor exposures
    all_moves: np.ndarray  # (S, K) raw factor moves: the shocks and the others' conditional moves
    all_effective: np.ndarray  # (S, K) those moves beyond the market (what the betas apply to)
    direct_pnl: np.ndarray  # (S, P) only the shocked factors moving
    full_pnl: np.ndarray  # (S, P) with the correlated moves


def stress_pnl(
    frame: pd.DataFrame, betas: np.ndarray, model: FactorModel, scenarios: list[StressScenario]
) -> StressPnl:
    """Every scenario's P&L per row of a book frame (stored or pro forma), given the rows' betas
    on the model's factors (rows x model.names); options fully revalued."""
    names = model.names
    dollar = factor_exposure(frame)[:, None] * betas
    option = frame["is_option"].to_numpy(dtype=bool) & frame["volatility"].notna().to_numpy()
    legs = OptionLegs(
        rows=np.flatnonzero(option), spot=frame["underlying_price"].to_numpy(dtype=float)[option],
        strike=frame["strike"].to_numpy(dtype=float)[option],
        years=frame["days_to_expiry"].to_numpy(dtype=float)[option] / 365.0,
        rate=frame["risk_free_rate"].to_numpy(dtype=float)[option],
        volatility=frame["volatility"].to_numpy(dtype=float)[option],
        is_call=(frame["option_type"] == "C").to_numpy()[option],
        units=(frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)[option],
    )  # fmt: skip
    position = {name: i for i, name in enumerate(names)}
    direct_moves, all_moves = [], []
    for scenario in scenarios:
        shocked = [(position[k], v) for k, v in scenario.shocks.items() if k in position]
        idx = np.array([i for i, _ in shocked], dtype=int)
        values = np.array([v for _, v in shocked], dtype=float)
        direct = np.zeros(len(names))
        direct[idx] = values
        direct_moves.append(direct)
        all_moves.append(conditional_moves(model.cov, idx, values) if len(idx) else direct)
    direct_raw, all_raw = np.array(direct_moves), np.array(all_moves)
    # Direct: only the shocked factors move (an unshocked factor stays put, not "market-explained").
    direct_effective = np.where(direct_raw != 0, model.beyond_market(direct_raw), 0.0)
    all_effective = model.beyond_market(all_raw)
    return StressPnl(
        dollar=dollar, all_moves=all_raw, all_effective=all_effective,
        direct_pnl=position_pnl(direct_effective, dollar=dollar, betas=betas, options=legs),
        full_pnl=position_pnl(all_effective, dollar=dollar, betas=betas, options=legs),
    )  # fmt: skip


def stress_run(
    *,
    as_of: date | None = None,
    portfolio_ids: list[int],
    scenarios: list[StressScenario] | None = None,
) -> list[StressTestResult]:
    """Run scenarios (default: every active library scenario) for the portfolios and store them."""
    as_of = session_for(as_of)
    lookback = settings.SIGMASIGHT_FACTOR_WINDOW
    model = factor_model(as_of, lookback)
    correlation_store(as_of, model, lookback)
    have_betas = set(
        PositionFactorExposure.objects.filter(
            position__portfolio_id__in=portfolio_ids, date=as_of, factor__name=MARKET
        ).values_list("position__portfolio_id", flat=True)
    )
    missing = [pk for pk in portfolio_ids if pk not in have_betas]
    if missing:
        factors_compute(as_of=as_of, portfolio_ids=missing)
        ir_betas_compute(as_of=as_of, portfolio_ids=missing)
    frame, _ = book_frame(portfolio_ids, as_of)
    if scenarios is None:
        scenarios = list(
            StressScenario.objects.filter(owner__isnull=True, is_active=True).order_by("id")
        )
    if frame.empty or not scenarios:
        return []
    names = model.names
    result = stress_pnl(frame, stored_betas(frame["id"].tolist(), as_of, names), model, scenarios)
    dollar, all_moves, all_effective = result.dollar, result.all_moves, result.all_effective
    direct_pnl, full_pnl = result.direct_pnl, result.full_pnl
    rows = []
    for portfolio_id, group in frame.groupby("portfolio_id"):
        members = group.index.to_numpy()
        cash = float(Portfolio.objects.values_list("cash", flat=True).get(pk=portfolio_id))
        equity = cash + float(np.nansum(group["exposure"]))
        base = equity if equity > 0 else float(np.nansum(np.abs(group["exposure"]))) or 1.0
        for s, scenario in enumerate(scenarios):
            correlated = float(full_pnl[s, members].sum())
            worst = np.argsort(full_pnl[s, members])[:WORST]
            breakdown = {
                "factor_moves": dict(zip(names, map(float, all_moves[s]), strict=True)),
                "by_factor": dict(zip(names, map(float, dollar[members].sum(axis=0) * all_effective[s]), strict=True)),
                "worst_positions": [
                    {"position": int(group["id"].iloc[j]), "symbol": group["symbol"].iloc[j], "pnl": float(full_pnl[s, members][j])}
                    for j in worst
                ],
                "by_position": {
                    str(pid): float(v) for pid, v in zip(group["id"].tolist(), full_pnl[s, members], strict=True)
                },
                "normalized_by": "equity" if equity > 0 else "gross",
                "shocks_not_applied": {
                    k: {"shock": v, "why": model.left_out[k]} for k, v in scenario.shocks.items()
                    if k in model.left_out
                },
            }  # fmt: skip
            rows.append((
                int(portfolio_id), scenario.pk, as_of, float(direct_pnl[s, members].sum()), correlated,
                correlated, correlated / base, breakdown,
            ))  # fmt: skip
    with transaction.atomic():
        upsert_rows(
            StressTestResult,
            ["portfolio_id", "scenario_id", "date", "direct_pnl", "correlated_pnl", "total_pnl", "pnl_pct", "breakdown"],
            [(*r[:7], json.dumps(r[7])) for r in rows],
            unique=["portfolio_id", "scenario_id", "date"],
        )  # fmt: skip
    logger.info(
        "stress run",
        extra={
            "as_of": as_of.isoformat(),
            "portfolios": len(portfolio_ids),
            "scenarios": len(scenarios),
        },
    )
    return list(
        StressTestResult.objects.filter(portfolio_id__in=portfolio_ids, date=as_of, scenario__in=scenarios)
        .select_related("scenario").order_by("portfolio_id", "scenario_id")
    )  # fmt: skip
