"""Risk statistics against independent references (no database): hand computations of the stated
quantile definitions on arch's real S&P 500 series, closed forms, a hand-rolled EWMA loop, the
Kupiec formula written out, empyrical-reloaded and a statsmodels OLS slope."""

from __future__ import annotations

import math
from functools import cache

import empyrical
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from arch.data import nasdaq, sp500
from scipy import stats

from analytics.calculations import risk


@cache
def _sp500_returns() -> np.ndarray:
    """5,030 daily simple returns (Adj Close pct_change), 1999-01-05 .. 2018-12-31."""
    return sp500.load()["Adj Close"].pct_change().dropna().to_numpy()


@cache
def _sp500_nasdaq_returns() -> pd.DataFrame:
    closes = pd.DataFrame(
        {"spx": sp500.load()["Adj Close"], "ndx": nasdaq.load()["Adj Close"]}
    ).dropna()
    return closes.pct_change().dropna()


def _hand_tail(values: np.ndarray, percent_tail: int) -> tuple[float, float]:
    """The module's definition written out with integers: sort ascending, k = ceil(n x pct / 100)
    by integer division (no floating-point tail probability), VaR = -x_(k) (1-based), ES = -mean
    of every outcome <= x_(k)."""
    ordered = sorted(values.tolist())
    n = len(ordered)
    k = max(1, -(-n * percent_tail // 100))
    threshold = ordered[k - 1]
    tail = [x for x in ordered if x <= threshold]
    return -threshold, -sum(tail) / len(tail)


# --- historical VaR and ES ---------------------------------------------------------------------


@pytest.mark.parametrize(("confidence", "percent_tail"), [(0.95, 5), (0.99, 1)])
def test_historical_var_matches_sorted_hand_computation_on_sp500(confidence, percent_tail):
    returns = _sp500_returns()
    assert len(returns) == 5030  # k = 252 at 95% (251.5 rounded up), 51 at 99% (50.3)
    expected_var, _ = _hand_tail(returns, percent_tail)
    # Same observation picked: equality up to the sign flip only.
    np.testing.assert_allclose(
        risk.historical_var(returns, confidence), expected_var, rtol=0, atol=0
    )
    assert 0.01 < expected_var < 0.06  # a daily index loss, reported positive


@pytest.mark.parametrize(("confidence", "percent_tail"), [(0.95, 5), (0.99, 1)])
def test_expected_shortfall_matches_hand_computation_on_sp500(confidence, percent_tail):
    returns = _sp500_returns()
    _, expected_es = _hand_tail(returns, percent_tail)
    # Summation order differs (Python sum vs numpy pairwise): 1e-12 relative.
    np.testing.assert_allclose(
        risk.expected_shortfall(returns, confidence), expected_es, rtol=1e-12, atol=0
    )
    assert risk.expected_shortfall(returns, confidence) > risk.historical_var(returns, confidence)


@pytest.mark.parametrize("confidence", [0.95, 0.975, 0.99])
def test_historical_var_agrees_with_numpy_inverted_cdf(confidence):
    returns = _sp500_returns()
    expected = -np.quantile(returns, 1 - confidence, method="inverted_cdf")
    np.testing.assert_allclose(risk.historical_var(returns, confidence), expected, rtol=0, atol=0)


def test_historical_var_integer_tail_count_is_not_rounded_up():
    # 100 outcomes -100..-1 shuffled: 99% -> k = 1 (the worst, 100), although 100 x (1 - 0.99)
    # is 1.0000000000000009 in floating point; 95% -> k = 5 (the fifth worst, 96).
    pnl = np.random.default_rng(7).permutation(-np.arange(1.0, 101.0))
    assert risk.historical_var(pnl, 0.99) == 100.0
    assert risk.expected_shortfall(pnl, 0.99) == 100.0
    assert risk.historical_var(pnl, 0.95) == 96.0
    assert risk.expected_shortfall(pnl, 0.95) == (100 + 99 + 98 + 97 + 96) / 5


def test_expected_shortfall_includes_ties_at_the_var_level():
    # 60 outcomes; 95% -> k = 3. x_(3) = -5 is tied three times, so ES averages -9, -5, -5, -5.
    pnl = np.array([-9.0, -5.0, -5.0, -5.0] + [1.0] * 56)
    assert risk.historical_var(pnl, 0.95) == 5.0
    assert risk.expected_shortfall(pnl, 0.95) == (9 + 5 + 5 + 5) / 4


def test_historical_var_all_gains_is_negative_not_floored():
    pnl = np.arange(1.0, 61.0)
    assert risk.historical_var(pnl, 0.95) == -3.0


def test_scale_to_horizon_ten_day_var_by_square_root_of_time():
    returns = _sp500_returns()
    one_day, _ = _hand_tail(returns, 1)
    ten_day = risk.scale_to_horizon(risk.historical_var(returns, 0.99), 10)
    np.testing.assert_allclose(ten_day, one_day * 10**0.5, rtol=1e-15, atol=0)
    with pytest.raises(ValueError):
        risk.scale_to_horizon(1.0, 0)


# --- parametric and Monte Carlo ---------------------------------------------------------------


def _two_factor_book() -> tuple[np.ndarray, np.ndarray]:
    exposures = np.array([100_000.0, -50_000.0])
    cov = np.array([[1e-4, 3e-5], [3e-5, 4e-4]])  # daily vols 1% and 2%, correlation 0.15
    return exposures, cov


def test_parametric_var_hand_worked_two_factor():
    # e'Se = 1e10 x 1e-4 + 2 x 1e5 x (-5e4) x 3e-5 + 2.5e9 x 4e-4 = 1.0e6 - 3.0e5 + 1.0e6 = 1.7e6
    # + residual 3.0e5 = 2.0e6 currency^2, sigma = sqrt(2e6) = 1414.2136;
    # z_0.99 = 2.3263479 -> 1-day VaR = 3289.9527; 10-day = x sqrt(10) = 10403.7440.
    exposures, cov = _two_factor_book()
    one_day = risk.parametric_var(exposures, cov, 3.0e5, 0.99)
    ten_day = risk.parametric_var(exposures, cov, 3.0e5, 0.99, horizon_days=10)
    np.testing.assert_allclose(one_day, 3289.9527142663737, rtol=1e-12)
    np.testing.assert_allclose(ten_day, 10403.743971334878, rtol=1e-12)
    closed_form = stats.norm.ppf(0.99) * math.sqrt(exposures @ cov @ exposures + 3.0e5)
    np.testing.assert_allclose(one_day, closed_form, rtol=1e-14)


def test_parametric_var_rejects_bad_inputs():
    exposures, cov = _two_factor_book()
    with pytest.raises(ValueError):
        risk.parametric_var(exposures, cov[:1, :1], 0.0, 0.99)
    with pytest.raises(ValueError):
        risk.parametric_var(exposures, cov, -1.0, 0.99)
    with pytest.raises(ValueError):
        risk.parametric_var(np.array([np.nan, 1.0]), cov, 0.0, 0.99)
    with pytest.raises(ValueError):
        risk.parametric_var(exposures, cov, 0.0, 1.0)


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_monte_carlo_var_linear_book_within_two_percent_of_parametric(confidence):
    # Sampling standard error of the 10,000-draw quantile is about 1.3% (95%) and 1.6% (99%) of
    # VaR, so 2% is a real check; the fixed seed makes the outcome deterministic.
    exposures, cov = _two_factor_book()
    var, es = risk.monte_carlo_var(
        cov,
        lambda moves: moves @ exposures,
        n=10_000,
        seed=20240601,
        confidence=confidence,
        horizon_days=10,
    )
    parametric = risk.parametric_var(exposures, cov, 0.0, confidence, horizon_days=10)
    np.testing.assert_allclose(var, parametric, rtol=0.02)
    # Normal ES closed form, sigma phi(z) / (1 - c): the tail mean is noisier, 3%.
    sigma = math.sqrt(exposures @ cov @ exposures * 10)
    z = stats.norm.ppf(confidence)
    np.testing.assert_allclose(es, sigma * stats.norm.pdf(z) / (1 - confidence), rtol=0.03)


def test_monte_carlo_var_same_seed_reproduces_and_passes_moves_to_revalue():
    exposures, cov = _two_factor_book()
    seen = []

    def revalue(moves: np.ndarray) -> np.ndarray:
        seen.append(moves.shape)
        return moves @ exposures

    first = risk.monte_carlo_var(cov, revalue, n=5_000, seed=11, confidence=0.99)
    again = risk.monte_carlo_var(cov, revalue, n=5_000, seed=11, confidence=0.99)
    other = risk.monte_carlo_var(cov, revalue, n=5_000, seed=12, confidence=0.99)
    assert first == again
    assert first != other
    assert seen == [(5_000, 2)] * 3


def test_monte_carlo_var_with_the_callers_draws_is_the_same_and_checks_their_shape():
    """Moves drawn once by the caller (`monte_carlo_moves` of the same arguments, shared by many
    books) give exactly the VaR and ES of drawing them inside; a wrong shape is refused."""
    exposures, cov = _two_factor_book()
    moves = risk.monte_carlo_moves(cov, n=5_000, seed=11, horizon_days=10)
    inside = risk.monte_carlo_var(
        cov, lambda m: m @ exposures, n=5_000, seed=11, confidence=0.99, horizon_days=10
    )
    given = risk.monte_carlo_var(
        cov,
        lambda m: m @ exposures,
        n=5_000,
        seed=11,
        confidence=0.99,
        horizon_days=10,
        moves=moves,
    )
    assert given == inside
    with pytest.raises(ValueError, match="shape"):
        risk.monte_carlo_var(
            cov, lambda m: m @ exposures, n=5_000, seed=11, confidence=0.99, moves=moves[:100]
        )


def test_monte_carlo_var_rejects_bad_revalue_output():
    _, cov = _two_factor_book()
    with pytest.raises(ValueError):
        risk.monte_carlo_var(cov, lambda m: m, n=1_000, seed=1, confidence=0.99)
    with pytest.raises(ValueError):
        risk.monte_carlo_var(
            cov, lambda m: np.full(len(m), np.nan), n=1_000, seed=1, confidence=0.99
        )
    with pytest.raises(risk.InsufficientHistory):
        risk.monte_carlo_var(cov, lambda m: m[:, 0], n=10, seed=1, confidence=0.99)


# --- EWMA -------------------------------------------------------------------------------------


def _ewma_loop(returns: np.ndarray, lam: float) -> np.ndarray:
    seed_rows = min(len(returns), 20)
    window = returns[:seed_rows]
    centred = window - window.mean(axis=0)
    cov = centred.T @ centred / (seed_rows - 1)
    for row in returns[seed_rows:]:
        cov = lam * cov + (1 - lam) * np.outer(row, row)
    return cov


@pytest.mark.parametrize("source", ["market", "random"])
def test_ewma_covariance_matches_hand_rolled_loop(source):
    if source == "market":
        returns = _sp500_nasdaq_returns().to_numpy()[-252:]
    else:
        returns = np.random.default_rng(3).normal(0, 0.01, size=(252, 5))
    expected = _ewma_loop(returns, 0.94)
    # Closed form vs recursion: only rounding differs, 1e-12 relative per element.
    np.testing.assert_allclose(risk.ewma_covariance(returns), expected, rtol=1e-12, atol=0)


def test_ewma_covariance_symmetric_and_positive_semi_definite():
    returns = np.random.default_rng(5).normal(0, 0.01, size=(252, 6))
    returns[:, 5] = returns[:, 0] - returns[:, 1]  # exactly collinear: singular but PSD
    cov = risk.ewma_covariance(returns)
    assert np.array_equal(cov, cov.T)
    eigenvalues = np.linalg.eigvalsh(cov)
    assert eigenvalues.min() >= -1e-12 * eigenvalues.max()


def test_ewma_covariance_short_history_is_the_seed_and_one_factor_is_1x1():
    returns = np.random.default_rng(9).normal(0, 0.01, size=(15, 3))
    np.testing.assert_allclose(
        risk.ewma_covariance(returns), np.cov(returns, rowvar=False), rtol=1e-13
    )
    assert risk.ewma_covariance(_sp500_returns()[-252:]).shape == (1, 1)


def test_ewma_covariance_input_validation():
    with pytest.raises(risk.InsufficientHistory):
        risk.ewma_covariance(np.zeros((1, 2)))
    with pytest.raises(ValueError):
        risk.ewma_covariance(np.array([[0.01, np.nan], [0.0, 0.01]]))
    with pytest.raises(ValueError):
        risk.ewma_covariance(np.zeros((30, 2)), lam=1.0)


def test_ewma_correlation_unit_diagonal_and_hand_ratio():
    cov = risk.ewma_covariance(_sp500_nasdaq_returns().to_numpy()[-252:])
    corr = risk.ewma_correlation(cov)
    np.testing.assert_allclose(np.diag(corr), [1.0, 1.0], rtol=0, atol=0)
    np.testing.assert_allclose(corr[0, 1], cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), rtol=1e-14)
    assert 0.5 < corr[0, 1] < 1.0  # S&P 500 and Nasdaq move together
    zero_variance = risk.ewma_correlation(np.array([[1e-4, 0.0], [0.0, 0.0]]))
    assert zero_variance[0, 0] == 1.0
    assert np.isnan(zero_variance[1]).all() and np.isnan(zero_variance[0, 1])


# --- Kupiec and backtest ----------------------------------------------------------------------


def _kupiec_by_hand(x: int, n: int, confidence: float) -> tuple[float, float]:
    p = 1 - confidence
    null = math.log((1 - p) ** (n - x) * p**x)
    rate = x / n
    fitted = math.log((1 - rate) ** (n - x) * rate**x)  # Python: 0.0 ** 0 == 1.0
    lr = -2 * null + 2 * fitted
    return lr, float(stats.chi2.sf(lr, 1))


def test_kupiec_pof_worked_example_250_observations_8_exceptions():
    # n = 250, x = 8 at 99%: ln L0 = 242 ln 0.99 + 8 ln 0.01 = -39.27354;
    # ln L1 = 242 ln 0.968 + 8 ln 0.032 = -35.40677; LR = 7.73355, p = 0.00542 (rejected at 1%).
    lr, p_value = risk.kupiec_pof(8, 250, 0.99)
    expected_lr, expected_p = _kupiec_by_hand(8, 250, 0.99)
    np.testing.assert_allclose([lr, p_value], [expected_lr, expected_p], rtol=1e-10)
    np.testing.assert_allclose([lr, p_value], [7.7335507, 0.0054204], rtol=1e-6)


def test_kupiec_pof_zero_and_all_exceptions_are_finite():
    # x = 0: LR = -2 x 250 ln 0.99 = 5.025168, p = 0.024982.
    lr, p_value = risk.kupiec_pof(0, 250, 0.99)
    np.testing.assert_allclose([lr, p_value], _kupiec_by_hand(0, 250, 0.99), rtol=1e-10)
    np.testing.assert_allclose([lr, p_value], [5.0251679, 0.0249815], rtol=1e-6)
    # x = n: LR = -2 n ln p.
    lr, p_value = risk.kupiec_pof(20, 20, 0.95)
    np.testing.assert_allclose(lr, -2 * 20 * math.log(0.05), rtol=1e-14)
    assert math.isfinite(p_value) and p_value < 1e-10
    # Exactly the expected rate: LR = 0, p = 1.
    assert risk.kupiec_pof(5, 100, 0.95) == pytest.approx((0.0, 1.0), abs=1e-12)


def test_kupiec_pof_rejects_impossible_counts():
    for exceptions, observations in [(-1, 10), (11, 10), (0, 0)]:
        with pytest.raises(ValueError):
            risk.kupiec_pof(exceptions, observations, 0.99)


def test_var_backtest_counts_losses_strictly_greater_and_skips_nan_days():
    pnl = np.array([-150.0, -100.0, -99.0, 50.0, np.nan, -300.0, -120.0])
    var = np.array([100.0, 100.0, 100.0, 100.0, 100.0, np.nan, 130.0])
    # -150 > 100 exception; -100 equal, not; NaN P&L day and NaN VaR day are not observed.
    assert risk.var_backtest(pnl, var) == (1, 5)
    assert risk.var_backtest(pnl, 100.0) == (3, 6)


# --- return statistics against empyrical-reloaded ---------------------------------------------
# Same formulas on the same numbers; only summation order can differ, so 1e-10 relative.


def test_annualized_volatility_matches_empyrical():
    returns = _sp500_returns()
    np.testing.assert_allclose(
        risk.annualized_volatility(returns), empyrical.annual_volatility(returns), rtol=1e-10
    )


@pytest.mark.parametrize("risk_free_daily", [0.0, 0.0001])
def test_sharpe_matches_empyrical(risk_free_daily):
    returns = _sp500_returns()
    np.testing.assert_allclose(
        risk.sharpe(returns, risk_free_daily),
        empyrical.sharpe_ratio(returns, risk_free=risk_free_daily),
        rtol=1e-10,
    )


def test_sharpe_accepts_a_daily_risk_free_series():
    returns = _sp500_returns()
    rates = np.linspace(0.0, 0.0002, len(returns))
    np.testing.assert_allclose(
        risk.sharpe(returns, rates), empyrical.sharpe_ratio(returns, risk_free=rates), rtol=1e-10
    )


@pytest.mark.parametrize("risk_free_daily", [0.0, 0.0001])
def test_sortino_matches_empyrical(risk_free_daily):
    returns = _sp500_returns()
    np.testing.assert_allclose(
        risk.sortino(returns, risk_free_daily),
        empyrical.sortino_ratio(returns, required_return=risk_free_daily),
        rtol=1e-10,
    )


def test_max_drawdown_matches_empyrical_and_is_negative():
    returns = _sp500_returns()
    drawdown = risk.max_drawdown(returns)
    np.testing.assert_allclose(drawdown, empyrical.max_drawdown(returns), rtol=1e-10)
    assert -0.6 < drawdown < -0.5  # 2007-2009
    assert risk.max_drawdown(np.array([0.01, 0.02])) == 0.0
    np.testing.assert_allclose(risk.max_drawdown(np.array([-0.1, 0.05])), -0.1, rtol=1e-15)


def test_return_statistics_drop_nan_like_empyrical():
    returns = _sp500_returns().copy()
    returns[[10, 500, 4000]] = np.nan
    np.testing.assert_allclose(
        [
            risk.annualized_volatility(returns),
            risk.sharpe(returns, 0.0001),
            risk.sortino(returns, 0.0001),
            risk.max_drawdown(returns),
        ],
        [
            empyrical.annual_volatility(returns),
            empyrical.sharpe_ratio(returns, risk_free=0.0001),
            empyrical.sortino_ratio(returns, required_return=0.0001),
            empyrical.max_drawdown(returns),
        ],
        rtol=1e-10,
    )


def test_sharpe_and_sortino_undefined_ratios_are_nan():
    assert math.isnan(risk.sharpe(np.full(30, 0.001)))
    assert math.isnan(risk.sortino(np.full(30, 0.001)))


def test_beta_matches_statsmodels_ols_slope():
    frame = _sp500_nasdaq_returns()
    fit = sm.OLS(frame["ndx"].to_numpy(), sm.add_constant(frame["spx"].to_numpy())).fit()
    np.testing.assert_allclose(
        risk.beta(frame["ndx"].to_numpy(), frame["spx"].to_numpy()), fit.params[1], rtol=1e-10
    )


def test_beta_drops_nan_pairwise():
    frame = _sp500_nasdaq_returns().to_numpy().copy()
    frame[5, 0] = np.nan
    frame[9, 1] = np.nan
    kept = np.delete(frame, [5, 9], axis=0)
    assert risk.beta(frame[:, 1], frame[:, 0]) == risk.beta(kept[:, 1], kept[:, 0])
    with pytest.raises(ValueError):
        risk.beta(frame[:10, 1], frame[:11, 0])


# --- input validation ---------------------------------------------------------------------------


def test_historical_var_too_few_observations_raises():
    with pytest.raises(risk.InsufficientHistory) as raised:
        risk.historical_var(_sp500_returns()[:59], 0.95)
    assert (raised.value.observations, raised.value.required) == (59, 60)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(risk.InsufficientHistory):
        risk.expected_shortfall(_sp500_returns()[:59], 0.95)


def test_historical_var_drops_nan_before_counting():
    returns = _sp500_returns()[:300].copy()
    with_gaps = np.insert(returns, [3, 100, 250], np.nan)
    assert risk.historical_var(with_gaps, 0.99) == risk.historical_var(returns, 0.99)
    assert risk.expected_shortfall(with_gaps, 0.99) == risk.expected_shortfall(returns, 0.99)
    sparse = np.full(100, np.nan)
    sparse[:59] = returns[:59]  # 100 rows but only 59 observations
    with pytest.raises(risk.InsufficientHistory):
        risk.historical_var(sparse, 0.95)


def test_historical_var_rejects_infinite_values_and_bad_confidence():
    returns = _sp500_returns()[:100].copy()
    with pytest.raises(ValueError):
        risk.historical_var(returns, 95)
    returns[0] = -np.inf
    with pytest.raises(ValueError):
        risk.historical_var(returns, 0.95)


def test_return_statistics_too_few_observations_raise():
    for function in (risk.annualized_volatility, risk.sharpe, risk.sortino):
        with pytest.raises(risk.InsufficientHistory):
            function(np.array([0.01, np.nan]))
    with pytest.raises(risk.InsufficientHistory):
        risk.max_drawdown(np.array([np.nan]))
    with pytest.raises(risk.InsufficientHistory):
        risk.beta(np.array([0.01, np.nan]), np.array([0.02, 0.01]))


def _rolling_by_hand(pnl: np.ndarray, percent_tail: int, lookback: int) -> tuple[int, int]:
    """Each day against the hand-sorted VaR of the `lookback` days before it (NaN days dropped
    from both the windows and the days tested)."""
    exceptions = observations = 0
    for t in range(lookback, len(pnl)):
        window = pnl[t - lookback : t]
        var, _ = _hand_tail(window[~np.isnan(window)], percent_tail)
        if not np.isnan(pnl[t]):
            observations += 1
            exceptions += int(-pnl[t] > var)
    return exceptions, observations


@pytest.mark.parametrize(("confidence", "percent_tail"), [(0.95, 5), (0.99, 1)])
def test_rolling_var_backtest_matches_hand_windows_on_sp500(confidence, percent_tail):
    """The windows' VaRs at once (one partition of every window) give the hand-sorted windows'
    exceptions, on 500 days of arch's S&P 500 returns and with NaN days in them."""
    returns = _sp500_returns()[-500:]
    found = risk.rolling_var_backtest(returns, confidence)
    assert found == _rolling_by_hand(returns, percent_tail, 100)
    assert found[1] == 400 and found[0] > 0
    holes = returns.copy()
    holes[[120, 121, 300]] = np.nan
    assert risk.rolling_var_backtest(holes, confidence) == _rolling_by_hand(
        holes, percent_tail, 100
    )


def test_rolling_var_backtest_short_series_and_bad_input():
    assert risk.rolling_var_backtest(_sp500_returns()[:100], 0.99) == (0, 0)
    with pytest.raises(ValueError, match="confidence"):
        risk.rolling_var_backtest(_sp500_returns()[:300], 1.0)
    bad = _sp500_returns()[:300].copy()
    bad[150] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        risk.rolling_var_backtest(bad, 0.99)
