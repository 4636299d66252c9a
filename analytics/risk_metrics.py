"""Risk metrics of a book: VaR and ES (historical, overlapping-window, parametric, Monte Carlo),
volatility, Sharpe, Sortino, drawdown, beta and the VaR backtest; and the scenario backtest.

Each measure rests on its own inputs only (DESIGN.md, "Returns of a book"):
- historical VaR/ES, the overlapping-window VaR/ES, volatility, Sharpe, Sortino and drawdown need
  only the book's closes: the value path of today's holdings (calculations.book_path);
- beta needs the market proxy (SPY) on the same sessions;
- parametric and Monte Carlo VaR need the factor model (the factors with history in the window,
  the others recorded as left out).
A measure whose inputs are missing is null with the reason under `unavailable`; only a book
without enough history of its own closes is refused (InsufficientHistory, naming the series).
An empty book (nothing held) has zero risk: zeros, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from django.conf import settings

from analytics import contributions
from analytics.calculations import factors as fx
from analytics.calculations import risk
from analytics.calculations.book_path import BookPath, book_path
from analytics.calculations.scenarios import accuracy
from analytics.models import RiskMetricSnapshot
from analytics.montecarlo import (
    MONTE_CARLO_SEED,
    LegDraws,
    RevaluedRows,
    SameDraws,
    full_revaluation,
)
from analytics.risk_services import (
    factor_exposure,
    factor_model_returns,
    scenario_betas,
    style_betas,
)
from analytics.rows import RiskMetricRow
from analytics.selectors import (
    ReadCache,
    betas_of,
    book_frame,
    closes_panel,
    stored_factor_rows,
)
from marketdata import calendar
from marketdata.models import DailyPrice
from marketdata.providers.base import RATE_SHORT
from portfolios.models import Portfolio
from sigmasight.db import upsert_records
from sigmasight.exceptions import InsufficientHistory

MARKET_PROXY = "SPY"
CONFIDENCES = (0.95, 0.99)  # the stored metrics' and contributions'
HORIZON_DAYS = 1


def book_units(frame: pd.DataFrame) -> pd.Series:
    """Signed units (quantity x multiplier) per symbol of a book frame."""
    return (frame["quantity"] * frame["multiplier"]).groupby(frame["symbol"]).sum()


def history_required() -> int:
    return max(settings.SIGMASIGHT_FACTOR_MIN_OBSERVATIONS, risk.MIN_VAR_OBSERVATIONS)


def too_little_history(path: BookPath, required: int, window: int) -> InsufficientHistory:
    """The 422 of a book whose own closes give fewer than `required` P&L sessions: it names the
    shortest series and how many closes each has in the window."""
    short = sorted(path.coverage.items(), key=lambda item: (item[1], item[0]))[:5]
    named = ", ".join(f"{symbol} has {n}" for symbol, n in short)
    return InsufficientHistory(
        f"The book has {len(path.pnl)} sessions of P&L history in the {window} sessions to the "
        f"as-of date (every held series needs a close on a session for it to count: {named} "
        f"closes); {required} are needed.",
        fields={"sessions": len(path.pnl), "required": required, "series": dict(short)},
    )


def pnl_history(portfolio: Portfolio, as_of: date, sessions: int) -> BookPath:
    """The value path of the current book over the last `sessions` sessions' closes (positions'
    own closes; options their cached closes)."""
    frame, _ = book_frame([portfolio.pk], as_of)
    closes = closes_panel(sorted(set(frame["symbol"])), as_of, sessions + 1)
    return book_path(book_units(frame), closes, float(portfolio.cash))


def _span_returns(closes: pd.Series, sessions: list) -> np.ndarray:
    """Returns of a series between consecutive `sessions` (the book's complete sessions), so a
    gap the book spans is spanned here too; NaN where the series has no close."""
    values = closes.reindex(sessions).to_numpy(dtype=float)
    return values[1:] / values[:-1] - 1.0 if len(values) > 1 else np.zeros(0)


def scenario_accuracy(portfolio: Portfolio, as_of: date, days_back: int) -> dict:
    """Predicted (market beta exposure x SPY return) against realized P&L over the last sessions.
    An empty book has nothing to backtest: no observations."""
    frame, _ = book_frame([portfolio.pk], as_of)
    if frame.empty:
        return accuracy(np.zeros(0), np.zeros(0))
    path = pnl_history(portfolio, as_of, days_back)
    market = _span_returns(
        closes_panel([MARKET_PROXY], as_of, days_back + 1)[MARKET_PROXY], path.sessions
    )
    market_beta, _ = scenario_betas(frame, as_of)
    exposure_to_market = float(np.nansum(factor_exposure(frame) * np.nan_to_num(market_beta)))
    return accuracy(market * exposure_to_market, path.pnl)


@dataclass
class RiskInputs:
    """What every portfolio's risk metrics share for a session, read once for a batch of
    portfolios in a fixed number of queries: the book, its closes, the factor returns and their
    EWMA covariance, stored betas and dollar exposures, residual vols, SPY and the short rate."""

    as_of: date
    frame: pd.DataFrame
    cash: dict[int, float]
    closes: pd.DataFrame
    factors: list[str]
    cov: np.ndarray | None
    cov_error: str
    betas: np.ndarray  # frame rows x factors
    dollar: pd.DataFrame  # portfolio id x factors
    residual_vol: pd.Series  # by underlying symbol
    market: pd.Series  # SPY closes over the window
    rate: float
    left_out: dict[str, str] = field(default_factory=dict)  # factor -> why not in the model
    # Portfolio id -> rows whose Monte Carlo revaluation is already known (not repeated).
    revalued: dict[int, RevaluedRows] = field(default_factory=dict)
    # Position id x factors: the stored dollar exposures (None: a pro-forma book's, from betas).
    position_dollar: pd.DataFrame | None = None
    # Distinct option legs' revaluations under the draws, shared by the books (and, through the
    # read cache, by the chunks of a job in one process or of a worker's session).
    legs: LegDraws = field(default_factory=LegDraws, repr=False)
    _moves: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def moves(self, horizon_days: int) -> np.ndarray:
        """The seeded Monte Carlo factor moves under `cov` (drawn once, shared by every book)."""
        if horizon_days not in self._moves:
            assert self.cov is not None
            moves = risk.monte_carlo_moves(
                self.cov,
                n=settings.SIGMASIGHT_MONTE_CARLO_DRAWS,
                seed=MONTE_CARLO_SEED,
                horizon_days=horizon_days,
            )
            moves.flags.writeable = False  # shared by every book, known to LegDraws by identity
            self._moves[horizon_days] = moves
        return self._moves[horizon_days]


def risk_inputs(
    portfolio_ids: list[int], as_of: date, *, reads: ReadCache | None = None
) -> RiskInputs:
    frame, _ = book_frame(portfolio_ids, as_of, reads=reads)
    X, left_out = factor_model_returns(as_of, settings.SIGMASIGHT_FACTOR_WINDOW, reads=reads)
    factors = list(X.columns)
    ids = frame["id"].tolist()
    exposures = stored_factor_rows(ids, as_of, factors, reads=reads)
    exposures["portfolio_id"] = exposures["position_id"].map(
        dict(zip(ids, frame["portfolio_id"], strict=True))
    )
    dollar, position_dollar = (
        exposures.pivot_table(
            index=index, columns="factor", values="dollar", aggfunc="sum"
        ).reindex(columns=factors)
        for index in ("portfolio_id", "position_id")
    )
    cash = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "cash"))
    return risk_inputs_of_frame(
        frame,
        as_of,
        cash={pk: float(c) for pk, c in cash.items()},
        X=X,
        betas=betas_of(exposures, ids, factors),
        dollar=dollar,
        position_dollar=position_dollar,
        left_out=left_out,
        reads=reads,
    )


def risk_inputs_of_frame(
    frame: pd.DataFrame,
    as_of: date,
    *,
    cash: dict[int, float],
    X: pd.DataFrame,
    betas: np.ndarray,
    dollar: pd.DataFrame | None = None,
    position_dollar: pd.DataFrame | None = None,
    left_out: dict[str, str] | None = None,
    reads: ReadCache | None = None,
) -> RiskInputs:
    """The risk inputs of a book frame (stored or pro forma) given its rows' style betas (rows x
    X's factors). `dollar` (portfolio id x factors) defaults to the rows' factor exposure x
    betas summed per portfolio, which is what the factor job stores."""
    window = settings.SIGMASIGHT_FACTOR_WINDOW
    factors = list(X.columns)
    cov, cov_error = None, ""
    if X.empty:
        cov_error = "no factor has enough history: " + "; ".join((left_out or {}).values())
    else:
        try:
            cov = risk.ewma_covariance(X.to_numpy(), lam=settings.SIGMASIGHT_EWMA_LAMBDA)
        except (risk.InsufficientHistory, ValueError) as exc:
            cov_error = f"factor covariance: {exc}"
    if dollar is None:
        per_row = fx.dollar_exposures(factor_exposure(frame), betas) if len(frame) else betas
        dollar = (
            pd.DataFrame(per_row, columns=factors).groupby(frame["portfolio_id"].to_numpy()).sum()
        )
    underlyings = sorted(set(frame["underlying_symbol"]))
    residual_vol = pd.Series(dtype=float)
    if underlyings and not X.empty:
        residual_vol = pd.Series(
            style_betas(underlyings, as_of, X, reads=reads).residual_vol, index=underlyings
        )
    return RiskInputs(
        as_of=as_of,
        frame=frame,
        cash=cash,
        closes=closes_panel(sorted(set(frame["symbol"])), as_of, window + 1, reads=reads),
        factors=factors,
        cov=cov,
        cov_error=cov_error,
        betas=betas,
        dollar=dollar,
        residual_vol=residual_vol,
        market=closes_panel([MARKET_PROXY], as_of, window + 1, reads=reads)[MARKET_PROXY],
        rate=risk_free_daily(as_of),
        left_out=dict(left_out or {}),
        position_dollar=position_dollar,
        legs=reads.legs if reads is not None else LegDraws(),
    )


def risk_metrics(
    portfolio: Portfolio, as_of: date, *, confidence: float, horizon_days: int
) -> dict:
    inputs = risk_inputs([portfolio.pk], as_of)
    return portfolio_risk_metrics(inputs, portfolio.pk, (confidence,), horizon_days)[confidence]


def _empty_book(inputs: RiskInputs, confidence: float, horizon_days: int) -> dict:
    """Nothing held: no P&L, so no risk (cash only moves with nothing)."""
    return {
        "as_of": inputs.as_of,
        "confidence": confidence,
        "horizon_days": horizon_days,
        "var_historical": 0.0,
        "var_parametric": 0.0,
        "var_monte_carlo": 0.0,
        "es_monte_carlo": 0.0,
        "expected_shortfall": 0.0,
        "volatility": 0.0,
        "sharpe": None,
        "sortino": None,
        "max_drawdown": 0.0,
        "beta": 0.0,
        "backtest": {"exceptions": 0, "observations": 0, "kupiec_p_value": None},
        "observations": 0,
        "horizon_method": "square_root_of_time",
        "overlapping": {"var_historical": 0.0, "expected_shortfall": 0.0, "observations": 0},
        "normalized_by": "equity",
        "factor_model": _factor_model(inputs),
        "unavailable": {},
    }


def _factor_model(inputs: RiskInputs) -> dict:
    return {"factors": list(inputs.factors), "left_out": dict(inputs.left_out)}


@dataclass(frozen=True)
class BookRisk:
    """One portfolio's book on the session and what its measures share: the value path of its
    own closes and, with a factor covariance, its factor and specific exposures and its Monte
    Carlo revaluation (the seeded draws revalued once, for every confidence)."""

    frame: pd.DataFrame  # the portfolio's rows of the book frame
    path: BookPath
    horizon_days: int
    dollar: np.ndarray | None = None  # (K,) the book's factor dollar exposures
    position_dollar: np.ndarray | None = None  # (P, K) each position's (when stored ones read)
    specific: np.ndarray | None = None  # (P,) (factor exposure x residual vol)^2, 0 unknown
    residual: float = 0.0  # the book's daily specific variance, sum of `specific`
    revalue: SameDraws | None = None


def book_risk(
    inputs: RiskInputs, portfolio_id: int, horizon_days: int, *, by_position: bool = False
) -> BookRisk | None:
    """The portfolio's `BookRisk`; None for an empty book. A book whose own closes give too
    little history is refused (InsufficientHistory). `by_position` keeps each position's Monte
    Carlo P&L (the contributions need it)."""
    rows = (inputs.frame["portfolio_id"] == portfolio_id).to_numpy()
    frame = inputs.frame[rows].reset_index(drop=True)
    if frame.empty:
        return None
    path = book_path(book_units(frame), inputs.closes, inputs.cash.get(portfolio_id, 0.0))
    required = history_required()
    if len(path.pnl) < required:
        raise too_little_history(path, required, settings.SIGMASIGHT_FACTOR_WINDOW)
    if inputs.cov is None:
        return BookRisk(frame=frame, path=path, horizon_days=horizon_days)
    position_dollar = None
    if inputs.position_dollar is not None:
        position_dollar = (
            inputs.position_dollar.reindex(frame["id"]).fillna(0.0).to_numpy(dtype=float)
        )
        dollar = position_dollar.sum(axis=0)
    else:
        dollar = (
            inputs.dollar.loc[portfolio_id].fillna(0.0).to_numpy(dtype=float)
            if portfolio_id in inputs.dollar.index
            else np.zeros(len(inputs.factors))
        )
    vols = frame["underlying_symbol"].map(inputs.residual_vol).to_numpy(dtype=float)
    squared = (factor_exposure(frame) * vols) ** 2
    residual = float(np.nansum(squared))
    known = inputs.revalued.get(portfolio_id)
    known = (
        known if known is not None and known.fits(len(frame), inputs.cov, horizon_days) else None
    )
    revalue = full_revaluation(
        frame,
        inputs.betas[rows],
        residual,
        known,
        by_position=by_position and known is None,
        memo=inputs.legs,
    )
    return BookRisk(
        frame=frame,
        path=path,
        horizon_days=horizon_days,
        dollar=dollar,
        position_dollar=position_dollar,
        specific=np.where(np.isnan(squared), 0.0, squared),
        residual=residual,
        revalue=SameDraws(revalue),
    )


def portfolio_risk_metrics(
    inputs: RiskInputs, portfolio_id: int, confidences: Sequence[float], horizon_days: int
) -> dict[float, dict]:
    """Historical, overlapping-window, parametric and Monte Carlo VaR and ES, volatility,
    Sharpe, Sortino, drawdown, beta to SPY and the VaR backtest of one portfolio at each
    confidence (see the module docstring for what each measure needs)."""
    book = book_risk(inputs, portfolio_id, horizon_days)
    return book_metrics(inputs, book, confidences, horizon_days)


def book_metrics(
    inputs: RiskInputs, book: BookRisk | None, confidences: Sequence[float], horizon_days: int
) -> dict[float, dict]:
    """`portfolio_risk_metrics` of a `book_risk` (None: the empty book's zeros)."""
    if book is None:
        return {c: _empty_book(inputs, c, horizon_days) for c in confidences}
    path = book.path
    required = history_required()
    values, returns = path.pnl, path.returns
    unavailable: dict[str, str] = {}
    if inputs.cov is None:
        unavailable["var_parametric"] = unavailable["var_monte_carlo"] = inputs.cov_error
    market = _span_returns(inputs.market, path.sessions)
    beta = None
    if np.isfinite(market).sum() >= required:
        beta = risk.beta(returns, market)
    else:
        unavailable["beta"] = (
            f"{MARKET_PROXY} has {int(np.isfinite(market).sum())} returns on the book's "
            f"sessions; {required} are needed"
        )
    overlapping_pnl = path.horizon_pnl(horizon_days)
    if len(overlapping_pnl) < risk.MIN_VAR_OBSERVATIONS:
        unavailable["overlapping"] = (
            f"{len(overlapping_pnl)} overlapping {horizon_days}-session P&Ls in the window; "
            f"{risk.MIN_VAR_OBSERVATIONS} are needed"
        )
    result = {}
    for confidence in confidences:
        exceptions, observations = risk.rolling_var_backtest(values, confidence)
        _, p_value = (
            risk.kupiec_pof(exceptions, observations, confidence) if observations else (None, None)
        )
        var_parametric = var_monte_carlo = es_monte_carlo = None
        # The revaluation and the exposures are built only with a covariance.
        if book.revalue is not None and book.dollar is not None and inputs.cov is not None:
            var_parametric = risk.parametric_var(
                book.dollar, inputs.cov, book.residual, confidence, horizon_days
            )
            var_monte_carlo, es_monte_carlo = risk.monte_carlo_var(
                inputs.cov,
                book.revalue,
                n=settings.SIGMASIGHT_MONTE_CARLO_DRAWS,
                seed=MONTE_CARLO_SEED,
                confidence=confidence,
                horizon_days=horizon_days,
                moves=inputs.moves(horizon_days),
            )
        overlapping = (
            None
            if "overlapping" in unavailable
            else {
                "var_historical": risk.historical_var(overlapping_pnl, confidence),
                "expected_shortfall": risk.expected_shortfall(overlapping_pnl, confidence),
                "observations": len(overlapping_pnl),
            }
        )
        result[confidence] = {
            "as_of": inputs.as_of,
            "confidence": confidence,
            "horizon_days": horizon_days,
            "var_historical": risk.scale_to_horizon(
                risk.historical_var(values, confidence), horizon_days
            ),
            "var_parametric": var_parametric,
            "var_monte_carlo": var_monte_carlo,
            "es_monte_carlo": es_monte_carlo,  # at the horizon, as the draws
            "expected_shortfall": risk.scale_to_horizon(
                risk.expected_shortfall(values, confidence), horizon_days
            ),
            "volatility": risk.annualized_volatility(returns),
            "sharpe": risk.sharpe(returns, inputs.rate),
            "sortino": risk.sortino(returns, inputs.rate),
            "max_drawdown": risk.max_drawdown(returns),
            "beta": beta,
            "backtest": {
                "exceptions": exceptions,
                "observations": observations,
                "kupiec_p_value": p_value,
            },
            "observations": len(values),
            "horizon_method": "square_root_of_time",
            "overlapping": overlapping,
            "normalized_by": path.normalized_by,
            "factor_model": _factor_model(inputs),
            "unavailable": dict(unavailable),
        }
    return result


def revalued_rows(inputs: RiskInputs, portfolio_id: int, horizon_days: int) -> RevaluedRows | None:
    """The portfolio's Monte Carlo factor P&L under the seeded draws, for `RiskInputs.revalued`
    of a later book that appends rows to this one; None without a covariance."""
    if inputs.cov is None:
        return None
    rows = (inputs.frame["portfolio_id"] == portfolio_id).to_numpy()
    frame = inputs.frame[rows].reset_index(drop=True)
    pnl = full_revaluation(frame, inputs.betas[rows], 0.0, memo=inputs.legs)(
        inputs.moves(horizon_days)
    ).pnl
    return RevaluedRows(rows=len(frame), horizon_days=horizon_days, cov=inputs.cov, pnl=pnl)


def risk_free_daily(as_of: date) -> float:
    """The cached short rate (US3M) on or before `as_of`, else the settings default, per
    trading day (annual / 252), as a decimal."""
    quote = (
        DailyPrice.objects.filter(security__symbol=RATE_SHORT, date__lte=as_of)
        .order_by("-date")
        .values_list("close", flat=True)
        .first()
    )
    annual = float(quote) if quote is not None else settings.SIGMASIGHT_DEFAULT_RATE
    return annual / risk.TRADING_DAYS


def risk_metrics_compute(
    *, as_of: date | None = None, portfolio_ids: list[int], reads: ReadCache | None = None
) -> dict:
    """Every portfolio's stored metrics (95% and 99%, one day) for the session, and its risk
    contributions (`analytics.contributions`) from the same P&L and draws. Returns
    {"rows": written, "contribution_rows": position rows written, "skipped": {portfolio id:
    why}} (a book without enough history of its own is skipped with the reason, never a
    failure)."""
    as_of = calendar.session_for(as_of)
    inputs = risk_inputs(portfolio_ids, as_of, reads=reads)
    rows: list[RiskMetricRow] = []
    found: list[contributions.BookContributions] = []
    skipped: dict[int, str] = {}
    for portfolio_id in sorted(portfolio_ids):
        try:
            book = book_risk(inputs, portfolio_id, HORIZON_DAYS, by_position=True)
        except InsufficientHistory as exc:
            skipped[portfolio_id] = f"risk metrics: {exc.message}"
            continue
        metrics = book_metrics(inputs, book, CONFIDENCES, HORIZON_DAYS)
        found.append(contributions.book_contributions(inputs, portfolio_id, book, metrics))
        for confidence, m in metrics.items():
            rows.append(
                RiskMetricRow(
                    portfolio_id=portfolio_id,
                    date=as_of,
                    confidence=confidence,
                    horizon_days=HORIZON_DAYS,
                    var_historical=m["var_historical"],
                    var_parametric=m["var_parametric"],
                    var_monte_carlo=m["var_monte_carlo"],
                    expected_shortfall=m["expected_shortfall"],
                    volatility=m["volatility"],
                    sharpe=m["sharpe"],
                    sortino=m["sortino"],
                    max_drawdown=m["max_drawdown"],
                    beta=m["beta"],
                    backtest=json.dumps(m["backtest"]),
                    observations=m["observations"],
                    details=json.dumps({k: m[k] for k in DETAILS}),
                )
            )
    written = upsert_records(
        RiskMetricSnapshot, rows, unique=["portfolio_id", "date", "confidence", "horizon_days"]
    )
    stored = contributions.risk_contributions_store(
        as_of=as_of, horizon_days=HORIZON_DAYS, books=found
    )
    return {"rows": written, "contribution_rows": stored, "skipped": skipped}


# What a stored metric row keeps beside its columns.
DETAILS = ("horizon_method", "overlapping", "normalized_by", "factor_model", "unavailable")
