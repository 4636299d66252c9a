"""Portfolio risk statistics on arrays: VaR and expected shortfall (historical, delta-normal and
Monte Carlo), the RiskMetrics EWMA covariance, return ratios and the Kupiec VaR backtest.

Conventions (every function below follows them):
- Returns are daily simple returns as decimals (0.01 = 1%); P&L is in currency, gains positive.
- VaR and ES are reported as POSITIVE numbers meaning losses, in the units of the input: a
  return series gives VaR as a decimal return, a currency P&L series gives currency. They are not
  floored at zero: a tail made only of gains gives a negative VaR.
- Quantile (historical and Monte Carlo alike), with outcomes sorted x_(1) <= ... <= x_(n) and
  tail probability a = 1 - confidence: k = ceil(n * a), at least 1, and
  VaR = -x_(k). This is the inverted-CDF empirical quantile (numpy's method="inverted_cdf"): the
  smallest outcome whose empirical CDF #{x_i <= x} / n reaches a. n * a is rounded to 9 decimals
  before the ceiling so 100 x (1 - 0.99) counts as exactly 1 and not 1.0000000000000009.
- ES = -mean of every outcome at or below x_(k): the VaR observation itself is included (and so
  is any outcome tied with it), hence ES >= VaR always.
- Annualization uses 252 trading days and the square root of time for horizons.
- Missing data: NaN observations are dropped before anything is counted (a day without a number
  is absent, not a zero); infinite values are an error. Too few observations raise
  `InsufficientHistory`, never a silent default.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import stats

# Re-exported: risk.TRADING_DAYS is the annualisation every return statistic here uses.
from marketdata.calculations.black_scholes import TRADING_DAYS as TRADING_DAYS

RISKMETRICS_LAMBDA = 0.94
EWMA_SEED_ROWS = 20
# The factor model's minimum window (60 sessions); at 99% it leaves the worst day as the tail.
MIN_VAR_OBSERVATIONS = 60
MIN_RETURN_OBSERVATIONS = 2


class InsufficientHistory(ValueError):
    """Too few observations for the statistic. Pure Python on purpose (importing
    `sigmasight.exceptions` would import Django through the Celery app); services translate it
    into `sigmasight.exceptions.InsufficientHistory`."""

    def __init__(self, what: str, observations: int, required: int) -> None:
        super().__init__(f"{what} needs at least {required} observations, got {observations}")
        self.observations = observations
        self.required = required


def _observations(values: object, name: str) -> npt.NDArray[np.float64]:
    """1-d float array of the finite observations; NaN dropped, infinity refused."""
    array = np.asarray(values, dtype=float).reshape(-1)
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values")
    finite: npt.NDArray[np.bool_] = ~np.isnan(array)
    return array[finite]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def _tail_count(n: int, confidence: float) -> int:
    return max(1, math.ceil(round(n * (1.0 - confidence), 9)))


def _var_es(outcomes: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    k = _tail_count(outcomes.size, confidence)
    quantile = np.partition(outcomes, k - 1)[k - 1]
    return float(-quantile), float(-outcomes[outcomes <= quantile].mean())


def _tail_outcomes(pnl: object, confidence: float, what: str) -> npt.NDArray[np.float64]:
    _check_confidence(confidence)
    outcomes = _observations(pnl, "pnl")
    if outcomes.size < MIN_VAR_OBSERVATIONS:
        raise InsufficientHistory(what, outcomes.size, MIN_VAR_OBSERVATIONS)
    return outcomes


def historical_var(pnl: npt.NDArray[np.float64], confidence: float) -> float:
    """Historical VaR of a P&L (currency) or return (decimal) series, as a positive loss in the
    input's units: -x_(k) with k = ceil(n (1 - confidence)) over the sorted outcomes (the
    inverted-CDF quantile, see the module docstring). NaN dropped; at least
    MIN_VAR_OBSERVATIONS (60) finite outcomes or `InsufficientHistory`."""
    var, _ = _var_es(_tail_outcomes(pnl, confidence, "historical VaR"), confidence)
    return var


def expected_shortfall(pnl: npt.NDArray[np.float64], confidence: float) -> float:
    """Historical expected shortfall, as a positive loss in the input's units: -mean of all
    outcomes at or below the VaR quantile x_(k) (k = ceil(n (1 - confidence))), the VaR
    observation and any ties with it included, so ES >= VaR. NaN dropped; at least
    MIN_VAR_OBSERVATIONS (60) finite outcomes or `InsufficientHistory`."""
    _, shortfall = _var_es(_tail_outcomes(pnl, confidence, "expected shortfall"), confidence)
    return shortfall


def scale_to_horizon(
    value: float | npt.NDArray[np.float64], days: float
) -> float | npt.NDArray[np.float64]:
    """Square-root-of-time scaling of a one-day VaR, ES or volatility to `days` (i.i.d.,
    zero-mean returns): value x sqrt(days). Keeps the sign and units of `value`."""
    if not days > 0:
        raise ValueError(f"days must be positive, got {days}")
    return value * math.sqrt(days)


def ewma_covariance(
    returns: npt.NDArray[np.float64], lam: float = RISKMETRICS_LAMBDA
) -> npt.NDArray[np.float64]:
    """RiskMetrics EWMA covariance (K, K) of daily decimal returns (T, K), oldest row first.

    Seed: Sigma_0 = the sample covariance (demeaned, ddof=1) of the first m = min(T, 20) rows.
    Then, over the remaining rows r_t (t = m..T-1) and zero-mean (returns are not demeaned):
    Sigma_t = lam Sigma_{t-1} + (1 - lam) r_t r_t^T. The result is the last Sigma, the forecast
    for the day after the last row; with T <= 20 it is the seed alone. Computed in closed form,
    lam^N Sigma_0 + (1 - lam) sum_j lam^(N-1-j) r_j r_j^T, symmetric and positive
    semi-definite. A 1-d input is one factor. Non-finite returns are refused (align and fill
    before calling); fewer than 2 rows raise `InsufficientHistory`.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be strictly between 0 and 1, got {lam}")
    data = np.asarray(returns, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError("returns must be (T, K)")
    if not np.isfinite(data).all():
        raise ValueError("returns contain NaN or infinite values")
    if data.shape[0] < 2:
        raise InsufficientHistory("EWMA covariance", data.shape[0], 2)
    seed_rows = min(data.shape[0], EWMA_SEED_ROWS)
    seed = np.atleast_2d(np.cov(data[:seed_rows], rowvar=False, ddof=1))
    rest = data[seed_rows:]
    weights = lam ** np.arange(rest.shape[0] - 1, -1, -1, dtype=float)
    cov: npt.NDArray[np.float64] = (
        lam ** rest.shape[0] * seed + (1.0 - lam) * (rest * weights[:, None]).T @ rest
    )
    return (cov + cov.T) / 2.0


def ewma_correlation(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Correlation matrix of a covariance matrix: Sigma_ij / (sigma_i sigma_j), unit diagonal,
    clipped to [-1, 1]. A factor with zero variance has an undefined correlation: its row and
    column are NaN (its diagonal too)."""
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    clipped: npt.NDArray[np.float64] = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(clipped, np.where(sd > 0, 1.0, np.nan))
    return clipped


def parametric_var(
    exposures: npt.NDArray[np.float64],
    factor_cov: npt.NDArray[np.float64],
    residual_var: float,
    confidence: float,
    horizon_days: float = 1,
) -> float:
    """Delta-normal VaR in currency, a positive loss, zero mean:
    z_c x sqrt(e^T Sigma e + residual_var) x sqrt(horizon_days), where z_c is the standard normal
    `confidence` quantile, e the (K,) dollar factor exposures (options delta-adjusted), Sigma the
    (K, K) daily factor return covariance and residual_var = sum_i (exposure_i x
    residual_vol_i)^2 the daily idiosyncratic variance in currency^2."""
    _check_confidence(confidence)
    e = np.asarray(exposures, dtype=float).reshape(-1)
    cov = np.asarray(factor_cov, dtype=float)
    if cov.shape != (e.size, e.size):
        raise ValueError(f"factor_cov must be {(e.size, e.size)}, got {cov.shape}")
    if not (np.isfinite(e).all() and np.isfinite(cov).all() and math.isfinite(residual_var)):
        raise ValueError("exposures, factor_cov and residual_var must be finite")
    if residual_var < 0:
        raise ValueError("residual_var must be non-negative")
    variance = float(e @ cov @ e) + residual_var
    if variance < 0:
        raise ValueError("factor_cov is not positive semi-definite along the exposures")
    return float(scale_to_horizon(stats.norm.ppf(confidence) * math.sqrt(variance), horizon_days))


def monte_carlo_moves(
    factor_cov: npt.NDArray[np.float64],
    *,
    n: int,
    seed: int | np.random.SeedSequence,
    horizon_days: float = 1,
) -> npt.NDArray[np.float64]:
    """The (n, K) horizon factor moves `monte_carlo_var` revalues: N(0, Sigma x horizon_days)
    drawn with `numpy.random.default_rng(seed)` by eigen-decomposition. The same seed gives the
    same moves, so P&L of parts of a book revalued under them can be added up."""
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    cov = np.atleast_2d(np.asarray(factor_cov, dtype=float))
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(
        np.zeros(cov.shape[0]), cov * horizon_days, size=n, method="eigh", check_valid="raise"
    )


def monte_carlo_var(
    factor_cov: npt.NDArray[np.float64],
    revalue: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    *,
    n: int = 10_000,
    seed: int | np.random.SeedSequence,
    confidence: float,
    horizon_days: float = 1,
    moves: npt.NDArray[np.float64] | None = None,
) -> tuple[float, float]:
    """Monte Carlo (VaR, ES) in the units `revalue` returns (currency P&L), positive losses.

    Draws n horizon factor moves from N(0, Sigma x horizon_days) with
    `numpy.random.default_rng(seed)` (eigen-decomposition, so a singular but positive
    semi-definite Sigma is fine), calls `revalue(moves)` with moves (n, K) decimal factor returns,
    which must return the (n,) P&L (the caller revalues options in full there), then applies the
    historical quantile and ES definitions above. For a linear book, revalue = moves @ e, it
    converges to `parametric_var(e, Sigma, 0, ...)`: idiosyncratic risk is only simulated if
    `revalue` adds it. The same seed gives the same numbers. A non-finite P&L is an error.
    `moves`: those draws (`monte_carlo_moves` of the same arguments) when the caller has them,
    so books under one covariance share one draw; their shape is checked.
    """
    _check_confidence(confidence)
    if n < MIN_VAR_OBSERVATIONS:
        raise InsufficientHistory("Monte Carlo VaR", n, MIN_VAR_OBSERVATIONS)
    if moves is None:
        moves = monte_carlo_moves(factor_cov, n=n, seed=seed, horizon_days=horizon_days)
    elif moves.shape != (n, np.atleast_2d(factor_cov).shape[0]):
        raise ValueError(f"moves must have shape {(n, np.atleast_2d(factor_cov).shape[0])}")
    pnl = np.asarray(revalue(moves), dtype=float)
    if pnl.shape != (n,):
        raise ValueError(f"revalue must return shape {(n,)}, got {pnl.shape}")
    if not np.isfinite(pnl).all():
        raise ValueError("revalue returned NaN or infinite P&L")
    return _var_es(pnl, confidence)


def _returns(
    returns: object, name: str, required: int = MIN_RETURN_OBSERVATIONS
) -> npt.NDArray[np.float64]:
    observed = _observations(returns, name)
    if observed.size < required:
        raise InsufficientHistory(name, observed.size, required)
    return observed


def _excess(
    returns: npt.NDArray[np.float64], risk_free_daily: float | npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    excess = np.asarray(returns, dtype=float) - np.asarray(risk_free_daily, dtype=float)
    return _returns(excess, "excess returns")


def annualized_volatility(returns: npt.NDArray[np.float64], periods: int = TRADING_DAYS) -> float:
    """Sample standard deviation (ddof=1) of daily decimal returns x sqrt(periods), as a decimal.
    NaN dropped; at least 2 returns."""
    return float(np.std(_returns(returns, "returns"), ddof=1) * math.sqrt(periods))


def sharpe(
    returns: npt.NDArray[np.float64],
    risk_free_daily: float | npt.NDArray[np.float64] = 0.0,
    periods: int = TRADING_DAYS,
) -> float:
    """Annualized Sharpe ratio, empyrical's definition: with excess = returns - risk_free_daily
    (a daily decimal rate, scalar or aligned array), mean(excess) / std(excess, ddof=1) x
    sqrt(periods). NaN excess returns dropped; at least 2. Returns NaN when every excess return is
    equal (zero dispersion: the ratio is undefined)."""
    excess = _excess(returns, risk_free_daily)
    if excess.max() == excess.min():
        return math.nan
    return float(excess.mean() / np.std(excess, ddof=1) * math.sqrt(periods))


def sortino(
    returns: npt.NDArray[np.float64],
    risk_free_daily: float | npt.NDArray[np.float64] = 0.0,
    periods: int = TRADING_DAYS,
) -> float:
    """Annualized Sortino ratio, empyrical's definition: with excess = returns - risk_free_daily,
    downside deviation = sqrt(mean(min(excess, 0)^2)) over ALL observations (days above the
    target count as zeros), ratio = mean(excess) / downside deviation x sqrt(periods). NaN
    dropped; at least 2. Returns NaN when no excess return is negative (the ratio is undefined)."""
    excess = _excess(returns, risk_free_daily)
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0.0:
        return math.nan
    return float(excess.mean() / downside * math.sqrt(periods))


def max_drawdown(returns: npt.NDArray[np.float64]) -> float:
    """Largest peak-to-trough fall of the compounded wealth W_t = prod(1 + r_s), as a NEGATIVE
    decimal like empyrical (-0.25 = a 25% fall; 0.0 when wealth never falls below a peak). The
    starting wealth 1 counts as a peak, so a first-day loss is a drawdown. NaN returns dropped
    (the same as a flat day); at least 1 return. Wealth is floored at zero: a return at or below
    -100% (a short book on a gross base can lose more than its base in a day) is ruin, wealth 0
    from then on, a drawdown of exactly -1.0 and never below."""
    observed = _returns(returns, "returns", required=1)
    wealth = np.cumprod(np.maximum(1.0 + observed, 0.0))
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    return float(min(np.min(wealth / peak - 1.0), 0.0))


def beta(returns: npt.NDArray[np.float64], market_returns: npt.NDArray[np.float64]) -> float:
    """OLS slope (with intercept) of daily returns on market returns: cov(r, m) / var(m). Days
    where either is NaN are dropped pairwise; at least 2 pairs. NaN when the market returns have
    no variance."""
    r = np.asarray(returns, dtype=float).reshape(-1)
    m = np.asarray(market_returns, dtype=float).reshape(-1)
    if r.shape != m.shape:
        raise ValueError(f"returns and market_returns differ in length: {r.size} vs {m.size}")
    if np.isinf(r).any() or np.isinf(m).any():
        raise ValueError("returns contain infinite values")
    both = ~(np.isnan(r) | np.isnan(m))
    r, m = r[both], m[both]
    if r.size < MIN_RETURN_OBSERVATIONS:
        raise InsufficientHistory("beta", r.size, MIN_RETURN_OBSERVATIONS)
    dm = m - m.mean()
    denominator = float(dm @ dm)
    if denominator == 0.0:
        return math.nan
    return float(dm @ (r - r.mean()) / denominator)


def kupiec_pof(exceptions: int, observations: int, confidence: float) -> tuple[float, float]:
    """Kupiec proportion-of-failures test of a VaR at `confidence`: (LR, p-value).

    With p = 1 - confidence, x exceptions in n observations:
    LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1 - x/n)^(n-x) (x/n)^x], p-value = chi-square(1 dof)
    survival function at LR. 0 ln 0 is taken as 0, so x = 0 and x = n give finite results.
    A small p-value rejects the VaR's coverage.
    """
    _check_confidence(confidence)
    x, n = int(exceptions), int(observations)
    if n < 1 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= exceptions <= observations and observations >= 1: {x}/{n}")
    p = 1.0 - confidence
    rate = x / n
    null = (n - x) * math.log1p(-p) + x * math.log(p)
    # At x = 0 or x = n the fitted likelihood is 1 (0^0 = 1), its log 0.
    fitted = (n - x) * math.log1p(-rate) + x * math.log(rate) if 0 < x < n else 0.0
    lr = max(-2.0 * (null - fitted), 0.0)
    return lr, float(stats.chi2.sf(lr, df=1))


def var_backtest(
    pnl: npt.NDArray[np.float64], var: float | npt.NDArray[np.float64]
) -> tuple[int, int]:
    """(exceptions, observations) of a VaR series against realized P&L in the same units. VaR is
    the positive loss (scalar, or one per day aligned with pnl); an exception is a loss strictly
    greater than VaR, -pnl > var. Days where either is NaN are not observations."""
    realized = np.asarray(pnl, dtype=float).reshape(-1)
    limit = np.broadcast_to(np.asarray(var, dtype=float), realized.shape)
    both = ~(np.isnan(realized) | np.isnan(limit))
    return int(np.count_nonzero(-realized[both] > limit[both])), int(np.count_nonzero(both))


def rolling_var_backtest(
    pnl: np.ndarray, confidence: float, lookback: int = 100
) -> tuple[int, int]:
    """(exceptions, observations) of a rolling 1-day historical VaR, each from the previous
    `lookback` days of `pnl`, against each next day (`var_backtest`); (0, 0) when `pnl` has
    no more than `lookback` days."""
    series = np.asarray(pnl, dtype=float).reshape(-1)
    if len(series) <= lookback:
        return 0, 0
    if np.isfinite(series).all() and lookback >= MIN_VAR_OBSERVATIONS:
        # Every window full: all windows' x_(k) at once (the loop's numbers, one partition).
        _check_confidence(confidence)
        windows = np.lib.stride_tricks.sliding_window_view(series[:-1], lookback)
        k = _tail_count(lookback, confidence)
        var = -np.partition(windows, k - 1, axis=1)[:, k - 1]
    else:  # NaN days: each window keeps its own finite outcomes
        var = np.array(
            [
                historical_var(series[t - lookback : t], confidence)
                for t in range(lookback, len(series))
            ]
        )
    return var_backtest(series[lookback:], var)
