"""Exercise style by underlying: European for cash-settled index options (and the roots the
setting adds), American for single stocks and ETFs. No database."""

from __future__ import annotations

import pandas as pd
import pytest
from django.core.exceptions import ImproperlyConfigured

from marketdata.symbols import EUROPEAN_ROOTS, exercise_style, exercise_styles
from sigmasight.env import env_tickers
from sigmasight.tests.helpers import manage


@pytest.mark.parametrize(
    "underlying", ["SPX", "SPXW", "XSP", "NDX", "RUT", "DJX", "VIX", "spx", " ndx ", "^VIX", "^RUT"]
)
def test_exercise_style_cash_settled_indices_are_european(underlying):
    assert exercise_style(underlying) == "european"


@pytest.mark.parametrize("underlying", ["AAPL", "BRK.B", "SPY", "QQQ", "IWM", "OEX", "XYZ"])
def test_exercise_style_stocks_and_etfs_are_american(underlying):
    # OEX (S&P 100) is the one index option that is American; XEO is its European twin.
    assert exercise_style(underlying) == "american"


def test_exercise_style_takes_more_european_roots(settings):
    assert exercise_style("OEX", ["oex"]) == "european"
    assert exercise_style("SPX", []) == "european"  # the built-in roots stay European
    settings.SIGMASIGHT_EUROPEAN_UNDERLYINGS = frozenset({"OEX", "SPY"})
    assert exercise_style("oex") == "european"
    assert exercise_style("SPY") == "european"
    assert exercise_style("AAPL") == "american"


def test_exercise_styles_of_a_book_at_once(settings):
    settings.SIGMASIGHT_EUROPEAN_UNDERLYINGS = frozenset({"OEX"})
    underlyings = pd.Series(["AAPL", "spx", "^VIX", "OEX", "SPY"], index=[10, 11, 12, 13, 14])
    styles = exercise_styles(underlyings)
    assert styles.index.tolist() == [10, 11, 12, 13, 14]
    assert styles.tolist() == ["american", "european", "european", "european", "american"]
    assert exercise_styles(underlyings, []).tolist() == [
        "american",
        "european",
        "european",
        "american",
        "american",
    ]
    assert styles.tolist() == [exercise_style(u) for u in underlyings]


def test_european_roots_are_the_cash_settled_index_options():
    assert {"SPX", "NDX", "RUT", "XSP", "DJX", "VIX"} <= EUROPEAN_ROOTS
    assert "OEX" not in EUROPEAN_ROOTS


def test_european_underlyings_setting_parses_strictly(monkeypatch):
    monkeypatch.delenv("EUROPEAN", raising=False)
    assert env_tickers("EUROPEAN") == frozenset()
    monkeypatch.setenv("EUROPEAN", " oex, ^spy ,BRK.B,")
    assert env_tickers("EUROPEAN") == frozenset({"OEX", "SPY", "BRK.B"})
    for junk in ["SPX;NDX", "S P X", "SPX,=cmd", "ABCDEFGHIJKLMNOPQ"]:
        monkeypatch.setenv("EUROPEAN", junk)
        with pytest.raises(ImproperlyConfigured, match="EUROPEAN holds"):
            env_tickers("EUROPEAN")


def test_junk_european_underlyings_stop_start_up():
    result = manage("check", env={"DEBUG": "true", "SIGMASIGHT_EUROPEAN_UNDERLYINGS": "SPX;NDX"})
    assert result.returncode != 0
    assert "SIGMASIGHT_EUROPEAN_UNDERLYINGS holds 'SPX;NDX'" in result.stderr
