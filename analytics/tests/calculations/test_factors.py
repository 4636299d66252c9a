"""Factor betas against statsmodels OLS, known generating betas and hand-worked examples
(no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analytics.calculations import factors
from analytics.calculations.factors import (
    batched_ols,
    dollar_exposures,
    portfolio_betas,
    residualize,
    simple_returns,
)

FACTORS = ["market", "size", "value", "momentum", "quality", "low_vol", "growth"]
SESSIONS = 252


def _factor_panel(rng: np.random.Generator, sessions: int = SESSIONS) -> np.ndarray:
    """Correlated daily factor returns: market ~1.1% a day, styles 0.4-0.8%, correlations from a
    random loading matrix (|rho| up to ~0.8)."""
    k = len(FACTORS)
    loadings = rng.normal(size=(k, k)) * 0.5 + np.eye(k)
    corr = loadings @ loadings.T
    d = np.sqrt(np.diag(corr))
    corr = corr / np.outer(d, d)
    vols = np.r_[0.011, rng.uniform(0.004, 0.008, k - 1)]
    return rng.multivariate_normal(np.zeros(k), corr * np.outer(vols, vols), size=sessions)


def _positions(
    rng: np.random.Generator, X: np.ndarray, n: int, noise: float = 0.015
) -> tuple[np.ndarray, np.ndarray]:
    """y = alpha + X beta + e and the true betas: market 0.2..2, styles -1..1 (inside the cap),
    idiosyncratic noise of `noise` a day."""
    k = X.shape[1]
    beta = np.column_stack([rng.uniform(0.2, 2.0, n), rng.uniform(-1.0, 1.0, (n, k - 1))])
    alpha = rng.normal(0.0, 0.0005, n)
    y = alpha + X @ beta.T + rng.normal(0.0, noise, (len(X), n))
    return y, beta


@pytest.mark.parametrize("gaps", [False, True], ids=["one_pattern", "with_gaps"])
def test_batched_ols_matches_statsmodels_per_position(monkeypatch, gaps):
    monkeypatch.setattr(factors, "BLOCK", 64)  # several blocks and a partial last one
    rng = np.random.default_rng(11)
    X = _factor_panel(rng)
    y, _ = _positions(rng, X, 1_000)
    if gaps:
        X[17, 3] = np.nan  # a missing factor print: row 17 is unusable for every position
        y[:40, 5:8] = np.nan  # three late listings sharing one pattern
        y[rng.choice(SESSIONS, 30, replace=False), 100] = np.nan  # scattered gaps, own pattern
        y[rng.choice(SESSIONS, 12, replace=False), 200] = np.nan
        y[::2, 300] = np.nan  # 126 sessions, still above the minimum
    res = batched_ols(y, X, FACTORS)

    assert res.reason == [""] * 1_000
    # 30 gaps at position 100 happen to include row 17
    assert set(res.observations) == ({251, 212, 221, 239, 125} if gaps else {252})
    worst = dict.fromkeys(["params", "bse", "rsquared", "resid_std"], 0.0)
    for p in range(1_000):
        rows = np.isfinite(y[:, p]) & np.isfinite(X).all(axis=1)
        fit = sm.OLS(y[rows, p], sm.add_constant(X[rows])).fit()
        ours = {
            "params": np.r_[res.intercept[p], res.raw_betas[p]],
            "bse": res.std_errors[p],
            "rsquared": res.r_squared[p],
            "resid_std": res.residual_vol[p],
        }
        theirs = {
            "params": fit.params,
            "bse": fit.bse[1:],
            "rsquared": fit.rsquared,
            "resid_std": np.std(fit.resid, ddof=len(FACTORS) + 1),
        }
        for name in worst:
            worst[name] = max(worst[name], float(np.max(np.abs(ours[name] - theirs[name]))))
    # Two float64 least-squares solvers (QR here, pinv in statsmodels) on a well-conditioned
    # design agree to ~1e-14 (measured); 1e-9 absolute is the bound asked for.
    assert max(worst.values()) < 1e-9, worst
    np.testing.assert_array_equal(res.betas, res.raw_betas)
    assert not res.capped.any()


def test_batched_ols_recovers_generating_betas_within_five_standard_errors():
    rng = np.random.default_rng(5)
    X = _factor_panel(rng)
    y, beta = _positions(rng, X, 1_000)
    res = batched_ols(y, X, FACTORS)
    z = (res.raw_betas - beta) / res.std_errors
    # With fixed X and normal noise each z is t with 244 df. Over 7,000 estimates the chance that
    # any |z| > 5 is under 1%, so 5 standard errors (1.0 to 2.7 in beta here: the factors are
    # correlated and the noise is 1.5% a day) is a bound a correct estimator passes for any seed.
    assert np.max(np.abs(z)) < 5.0
    # The standard errors are honest: per factor, mean z^2 over 1,000 independent positions is
    # ~chi2(1000)/1000, sd 0.045, so 1 +/- 0.2 is more than 4 sd.
    np.testing.assert_allclose(np.mean(z**2, axis=0), 1.0, rtol=0, atol=0.2)


def test_residualize_matches_statsmodels_residuals_with_missing_rows():
    rng = np.random.default_rng(8)
    raw = pd.DataFrame(_factor_panel(rng, 120), columns=FACTORS)
    raw.iloc[3, 0] = np.nan  # market missing: every style is NaN there
    raw.iloc[10:14, 2] = np.nan
    out = residualize(raw)

    pd.testing.assert_series_equal(out["market"], raw["market"])
    for name in FACTORS[1:]:
        both = raw[["market", name]].dropna()
        fit = sm.OLS(both[name], sm.add_constant(both["market"])).fit()
        np.testing.assert_allclose(out.loc[both.index, name], fit.resid, rtol=0, atol=1e-15)
        assert out[name].drop(both.index).isna().all()
        np.testing.assert_allclose(out.loc[both.index, name].mean(), 0.0, rtol=0, atol=1e-17)
        assert abs(np.dot(out.loc[both.index, name], both["market"])) < 1e-17


def test_batched_ols_residualized_market_beta_equals_single_factor_beta():
    rng = np.random.default_rng(21)
    X = _factor_panel(rng)
    y, _ = _positions(rng, X, 500)
    styles = residualize(pd.DataFrame(X, columns=FACTORS)).to_numpy()
    multi = batched_ols(y, styles, FACTORS)
    single = batched_ols(y, X[:, :1], FACTORS[:1])
    # Frisch-Waugh: the residual styles are orthogonal to [1, market] in-sample, so adding them
    # cannot move the market coefficient; what remains is float64 rounding (~1e-14 here).
    np.testing.assert_allclose(multi.raw_betas[:, 0], single.raw_betas[:, 0], rtol=0, atol=1e-10)
    # Whereas the raw, correlated styles do move it.
    assert (
        np.max(np.abs(batched_ols(y, X, FACTORS).raw_betas[:, 0] - single.raw_betas[:, 0])) > 0.05
    )


def test_batched_ols_caps_betas_and_records_it():
    rng = np.random.default_rng(2)
    X = _factor_panel(rng)
    beta = np.zeros((3, len(FACTORS)))
    beta[:, 0] = [5.0, -5.0, 1.0]
    y = X @ beta.T + rng.normal(0.0, 0.002, (SESSIONS, 3))
    res = batched_ols(y, X, FACTORS)
    np.testing.assert_array_equal(res.betas[:, 0], [3.0, -3.0, res.raw_betas[2, 0]])
    np.testing.assert_array_equal(res.capped[:, 0], [True, True, False])
    assert not res.capped[:, 1:].any()
    # Noise 0.2% a day: the market SE is ~0.03 here (correlated factors inflate the
    # 0.002 / (0.011 sqrt 252) ~ 0.012 of a lone factor), so "~5" means within 5 of its own SEs.
    error = np.abs(res.raw_betas[:, 0] - [5.0, -5.0, 1.0])
    assert np.all(error < 5 * res.std_errors[:, 0]) and np.all(error < 0.2)


def test_batched_ols_minimum_observations_59_is_nan_60_is_solved():
    rng = np.random.default_rng(4)
    X = _factor_panel(rng, 100)
    y, _ = _positions(rng, X, 3)
    y[:41, 0] = np.nan  # 59 usable
    y[:40, 1] = np.nan  # 60 usable
    res = batched_ols(y, X, FACTORS)
    np.testing.assert_array_equal(res.observations, [59, 60, 100])
    assert res.reason == ["insufficient_history: 59 observations, 60 needed", "", ""]
    for field in (res.betas, res.raw_betas, res.std_errors):
        assert np.isnan(field[0]).all() and np.isfinite(field[1:]).all()
    assert np.isnan([res.intercept[0], res.r_squared[0], res.residual_vol[0]]).all()
    assert not res.capped[0].any()


def test_batched_ols_constant_factor_is_reported_not_solved():
    rng = np.random.default_rng(6)
    X = _factor_panel(rng, 100)
    X[:, 4] = 0.0  # a factor that never moved is collinear with the intercept
    y, _ = _positions(rng, X, 2)
    res = batched_ols(y, X, FACTORS)
    assert all(r.startswith("collinear_factors: design condition number") for r in res.reason)
    assert np.isnan(res.betas).all()


def test_batched_ols_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="K = len"):
        batched_ols(np.zeros((10, 2)), np.zeros((10, 3)), ["market"])


def test_dollar_exposures_nan_beta_contributes_zero():
    exposure = np.array([10_000.0, -5_000.0, 2_000.0])
    betas = np.array([[1.2, 0.5], [0.8, -1.0], [np.nan, np.nan]])
    np.testing.assert_allclose(
        dollar_exposures(exposure, betas),
        [[12_000.0, 5_000.0], [-4_000.0, 5_000.0], [0.0, 0.0]],
        rtol=0,
        atol=1e-9,
    )


def test_portfolio_betas_divide_by_equity():
    dollar = np.array([[12_000.0, 5_000.0], [-4_000.0, 5_000.0], [np.nan, np.nan]])
    betas, normalized_by = portfolio_betas(dollar, equity=20_000.0, gross=15_000.0)
    np.testing.assert_allclose(betas, [0.4, 0.5], rtol=0, atol=1e-15)
    assert normalized_by == "equity"


def test_portfolio_betas_gross_fallback_when_equity_not_positive():
    dollar = np.array([[12_000.0, 5_000.0], [-4_000.0, 5_000.0]])
    betas, normalized_by = portfolio_betas(dollar, equity=-1_000.0, gross=15_000.0)
    np.testing.assert_allclose(betas, [8_000.0 / 15_000.0, 10_000.0 / 15_000.0], rtol=0, atol=1e-15)
    assert normalized_by == "gross"
    assert portfolio_betas(dollar, equity=0.0, gross=15_000.0)[1] == "gross"
    with pytest.raises(ValueError, match="positive equity or gross"):
        portfolio_betas(dollar, equity=0.0, gross=0.0)


def test_simple_returns_hand_worked():
    closes = pd.DataFrame(
        {"AAPL": [100.0, 110.0, 99.0, 99.0], "SPY": [400.0, np.nan, 410.0, 328.0]},
        index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]),
    )
    expected = pd.DataFrame(
        {"AAPL": [0.1, -0.1, 0.0], "SPY": [np.nan, np.nan, -0.2]}, index=closes.index[1:]
    )
    pd.testing.assert_frame_equal(simple_returns(closes), expected, rtol=0, atol=1e-15)
