"""Real prices, real users: arch's daily S&P 500 and NASDAQ (1999-2018) imported with
`manage.py import_prices` as SPY and QQQ, one-line books uploaded over the API by a new user,
the daily batch, and the risk answers checked against an independent computation here (numpy,
statsmodels, a hand-written EWMA), across 2008 and before the style ETFs existed (no MTUM,
QUAL, USMV, SIZE, VTV or VUG in the file: the factor model is the market alone)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from io import StringIO

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from arch.data import nasdaq, sp500
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from scipy import stats

from analytics import batch
from analytics.models import BatchJob
from marketdata import calendar
from marketdata.models import DailyPrice
from portfolios.models import Portfolio

AS_OF = date(2008, 12, 31)
HOLE = date(2008, 6, 16)  # a session SPY's file lacks in the hole tests
WINDOW = 252


def _closes(load, name: str) -> pd.Series:
    frame = load()
    series = frame["Close"].rename(name)
    series.index = [d.date() for d in frame.index]
    return series


@pytest.fixture(scope="module")
def index_closes() -> pd.DataFrame:
    return pd.concat([_closes(sp500.load, "SPY"), _closes(nasdaq.load, "QQQ")], axis=1)


def _price_file(closes: pd.DataFrame, start: date, end: date, drop: dict[str, date]) -> str:
    rows = ["symbol,date,open,high,low,close,volume"]
    for symbol in closes.columns:
        series = closes[symbol].loc[start:end]
        for day, close in series.items():
            if drop.get(symbol) == day:
                continue
            rows.append(f"{symbol},{day.isoformat()},{close},{close},{close},{close},1000")
    return "\n".join(rows) + "\n"


def import_real(
    tmp_path, index_closes, *, start=date(2007, 6, 1), end=date(2009, 3, 31), drop=None
) -> str:
    path = tmp_path / "prices.csv"
    path.write_text(_price_file(index_closes, start, end, drop or {}))
    out = StringIO()
    call_command("import_prices", str(path), stdout=out)
    return out.getvalue()


def new_book(auth_client, rows: list[str], cash: str = "0") -> Portfolio:
    """A new user's portfolio with `rows` (symbol,quantity) uploaded over the API."""
    name = "Real " + " ".join(rows)
    created = auth_client.post("/api/v1/portfolios/", {"name": name, "cash": cash}, format="json")
    assert created.status_code == 201, created.content
    portfolio = Portfolio.objects.get(pk=created.json()["id"])
    text = "symbol,quantity,entry_price,entry_date\n" + "".join(
        f"{row},100.00,2007-01-03\n" for row in rows
    )
    upload = auth_client.post(
        f"/api/v1/portfolios/{portfolio.pk}/upload/",
        {"file": SimpleUploadedFile("book.csv", text.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert upload.status_code in (200, 201), upload.content
    return portfolio


def window_closes(index_closes: pd.DataFrame, as_of: date = AS_OF) -> pd.DataFrame:
    """The closes of the window the risk job uses: the last WINDOW + 1 NYSE sessions."""
    return index_closes.reindex(calendar.sessions_back(as_of, WINDOW + 1))


def metrics(auth_client, portfolio: Portfolio, confidence: float = 0.95, horizon: int = 1) -> dict:
    response = auth_client.get(
        "/api/v1/risk/metrics/",
        {
            "portfolio": portfolio.pk,
            "as_of": AS_OF.isoformat(),
            "confidence": confidence,
            "horizon_days": horizon,
        },
    )
    assert response.status_code == 200, response.content
    return response.json()


def var_es(pnl: np.ndarray, confidence: float) -> tuple[float, float]:
    """Independent historical VaR/ES: numpy's inverted-CDF quantile and the tail at or below it."""
    quantile = np.quantile(pnl, 1 - confidence, method="inverted_cdf")
    return -quantile, -pnl[pnl <= quantile].mean()


def ewma_variance(returns: np.ndarray, lam: float = 0.94, seed_rows: int = 20) -> float:
    """RiskMetrics EWMA variance, a plain loop: seeded with the sample variance of the first 20."""
    variance = np.var(returns[:seed_rows], ddof=1)
    for r in returns[seed_rows:]:
        variance = lam * variance + (1 - lam) * r * r
    return float(variance)


@pytest.fixture
def csv_only(settings):
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "csv"


@pytest.mark.slow
def test_an_index_book_across_2008_matches_an_independent_computation(
    csv_only, tmp_path, index_closes, auth_client
):
    import_real(tmp_path, index_closes)
    spy = new_book(auth_client, ["SPY,10"])
    qqq = new_book(auth_client, ["QQQ,10"], cash="5000")
    jobs = batch.run_daily_batch(AS_OF, portfolio_ids=[spy.pk, qqq.pk])
    assert {j.name: j.status for j in jobs} == dict.fromkeys(batch.daily(), "succeeded")

    closes = window_closes(index_closes)
    # SPY only: its own returns, beta 1, the index's drawdown over the window.
    got = metrics(auth_client, spy)
    pnl = 10 * closes["SPY"].diff().dropna().to_numpy()
    returns = closes["SPY"].pct_change().dropna().to_numpy()
    var, es = var_es(pnl, 0.95)
    assert got["observations"] == WINDOW
    assert got["var_historical"] == pytest.approx(var, rel=1e-12)
    assert got["expected_shortfall"] == pytest.approx(es, rel=1e-12)
    assert got["volatility"] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252), rel=1e-12)
    assert got["beta"] == pytest.approx(1.0, abs=1e-9)
    prices = closes["SPY"].to_numpy()
    assert got["max_drawdown"] == pytest.approx(
        np.min(prices / np.maximum.accumulate(prices) - 1), rel=1e-10
    )
    assert got["normalized_by"] == "equity"
    # Before 2011 only the market factor has history: the others are left out, and named.
    assert got["factor_model"]["factors"] == ["Market"]
    assert {"Value", "Momentum", "Quality"} <= set(got["factor_model"]["left_out"])
    assert got["data_quality"]["source"] == "csv" and not got["data_quality"]["mixed"]

    # QQQ and cash: returns over yesterday's value, beta and parametric VaR from a one-factor
    # model computed here with statsmodels and a hand-written EWMA.
    got = metrics(auth_client, qqq, confidence=0.99)
    value = 5000 + 10 * closes["QQQ"]
    returns = (value.diff() / value.shift(1)).dropna().to_numpy()
    market = closes["SPY"].pct_change().dropna().to_numpy()
    assert got["volatility"] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252), rel=1e-12)
    beta = sm.OLS(returns, sm.add_constant(market)).fit().params[1]
    assert got["beta"] == pytest.approx(beta, rel=1e-9)
    asset = closes["QQQ"].pct_change().dropna().to_numpy()
    fit = sm.OLS(asset, sm.add_constant(market)).fit()
    exposure = 10 * closes["QQQ"].iloc[-1]
    variance = (exposure * fit.params[1]) ** 2 * ewma_variance(market) + (
        exposure * np.std(fit.resid, ddof=2)
    ) ** 2
    assert got["var_parametric"] == pytest.approx(
        stats.norm.ppf(0.99) * math.sqrt(variance), rel=1e-9
    )
    # 10-day VaR: square root of time and overlapping 10-session P&L of the revalued book.
    got = metrics(auth_client, qqq, confidence=0.99, horizon=10)
    pnl = (10 * closes["QQQ"]).diff().dropna().to_numpy()
    assert got["var_historical"] == pytest.approx(var_es(pnl, 0.99)[0] * math.sqrt(10), rel=1e-12)
    ten_day = (value - value.shift(10)).dropna().to_numpy()
    assert got["overlapping"]["var_historical"] == pytest.approx(
        var_es(ten_day, 0.99)[0], rel=1e-12
    )
    assert got["overlapping"]["expected_shortfall"] == pytest.approx(
        var_es(ten_day, 0.99)[1], rel=1e-12
    )
    assert got["overlapping"]["observations"] == WINDOW - 9


@pytest.mark.slow
def test_a_hole_in_a_real_series_stays_a_hole_and_returns_span_it(
    csv_only, tmp_path, index_closes, auth_client
):
    printed = import_real(tmp_path, index_closes, drop={"SPY": HOLE})
    assert HOLE.isoformat() in printed and "SPY" in printed
    spy = new_book(auth_client, ["SPY,10"])
    jobs = {j.name: j for j in batch.run_daily_batch(AS_OF, portfolio_ids=[spy.pk])}
    assert all(j.status == "succeeded" for j in jobs.values()), {
        n: j.error for n, j in jobs.items()
    }
    warning = " ".join(jobs["market_data"].warnings[str(spy.pk)])
    assert "SPY" in warning and HOLE.isoformat() in warning
    assert not DailyPrice.objects.filter(security__symbol="SPY", date=HOLE).exists()

    got = metrics(auth_client, spy)
    closes = window_closes(index_closes)["SPY"].drop(HOLE)
    pnl = 10 * closes.diff().dropna().to_numpy()  # the day after the hole spans two sessions
    var, es = var_es(pnl, 0.95)
    assert got["observations"] == WINDOW - 1
    assert got["var_historical"] == pytest.approx(var, rel=1e-12)
    assert got["expected_shortfall"] == pytest.approx(es, rel=1e-12)
    assert got["max_drawdown"] > -1.0


@pytest.mark.slow
def test_the_synthetic_market_never_fills_a_real_series_and_says_mixed(
    settings, tmp_path, index_closes, auth_client
):
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "synthetic"
    as_of = date(2018, 12, 31)
    hole = date(2018, 10, 15)
    import_real(tmp_path, index_closes, start=date(2017, 11, 1), end=as_of, drop={"SPY": hole})
    spy = new_book(auth_client, ["SPY,1"], cash="1000")
    jobs = batch.run_daily_batch(as_of, portfolio_ids=[spy.pk])
    assert {j.status for j in jobs} == {"succeeded"}, [(j.name, j.error) for j in jobs]
    assert not DailyPrice.objects.filter(security__symbol="SPY", date=hole).exists()
    assert set(
        DailyPrice.objects.filter(security__symbol="SPY").values_list("source", flat=True)
    ) == {"csv"}
    assert DailyPrice.objects.filter(security__symbol="VTV", source="synthetic").exists()
    summary = auth_client.get(f"/api/v1/portfolios/{spy.pk}/summary/", {"as_of": as_of.isoformat()})
    quality = summary.json()["data_quality"]
    assert quality["source"] == "mixed" and quality["mixed"] is True
    assert quality["sources"]["book"] == ["csv"] and "synthetic" in quality["sources"]["factors"]


def test_before_the_book_has_history_metrics_are_422_naming_the_series(
    csv_only, tmp_path, index_closes, auth_client
):
    # QQQ imported only for the last 5 sessions of 2008: five sessions of history.
    path = tmp_path / "short.csv"
    first = calendar.sessions_back(AS_OF, 5)[0]
    path.write_text(_price_file(index_closes[["QQQ"]], first, AS_OF, {}))
    call_command("import_prices", str(path), stdout=StringIO())
    book = new_book(auth_client, ["QQQ,1"])
    response = auth_client.get("/api/v1/risk/metrics/", {"portfolio": book.pk, "as_of": AS_OF})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "insufficient_history"
    assert error["fields"]["series"] == {"QQQ": 5} and error["fields"]["required"] == 60
    assert "QQQ has 5" in error["message"]
    summary = auth_client.get(f"/api/v1/portfolios/{book.pk}/summary/", {"as_of": AS_OF})
    assert summary.status_code == 200
    assert Decimal(summary.json()["exposures"]["gross"]) == Decimal(
        f"{index_closes.loc[AS_OF, 'QQQ']:.2f}"
    )
    jobs = batch.run_daily_batch(AS_OF, portfolio_ids=[book.pk])
    assert {j.status for j in jobs} == {BatchJob.Status.SUCCEEDED}
    risk_job = next(j for j in jobs if j.name == "market_risk")
    assert "QQQ has 5" in " ".join(risk_job.warnings[str(book.pk)])
