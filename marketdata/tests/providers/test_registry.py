from __future__ import annotations

import os
import subprocess
import sys

import pytest

from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.providers.yahoo import YahooProvider
from sigmasight.servers import ROOT


def test_without_a_key_everything_is_synthetic(settings):
    settings.POLYGON_API_KEY = None
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "auto"
    assert [type(p) for p in registry.chain()] == [SyntheticProvider]
    assert registry.current_source() == "synthetic"


def test_with_a_key_polygon_first_then_yfinance(settings, tmp_path):
    settings.POLYGON_API_KEY = "k"
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "auto"
    settings.SIGMASIGHT_YFINANCE_CACHE_DIR = tmp_path
    chain = registry.chain()
    assert [type(p) for p in chain] == [PolygonProvider, YahooProvider]
    assert registry.current_source() == "polygon"


@pytest.mark.parametrize(
    ("source", "expected"), [("synthetic", [SyntheticProvider]), ("yfinance", [YahooProvider])]
)
def test_source_setting_forces_a_choice(settings, tmp_path, source, expected):
    settings.POLYGON_API_KEY = "k"
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = source
    settings.SIGMASIGHT_YFINANCE_CACHE_DIR = tmp_path
    assert [type(p) for p in registry.chain()] == expected


def test_csv_source_has_no_provider_at_all(settings):
    settings.POLYGON_API_KEY = "k"
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "csv"
    assert registry.chain() == []
    assert registry.current_source() == "csv"


@pytest.mark.parametrize(("value", "ok"), [("csv", True), ("CSV", False), ("files", False)])
def test_source_setting_accepts_only_its_choices(value, ok):
    """The setting is read strictly at start-up: a choice outside the list stops the process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "POLYGON_API_KEY"}
    }
    env |= {"DJANGO_SETTINGS_MODULE": "sigmasight.settings.test"}
    env["SIGMASIGHT_MARKET_DATA_SOURCE"] = value
    code = "import django; django.setup(); from marketdata.providers import registry; " + (
        "print(registry.current_source(), registry.chain())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "csv []"
    else:
        assert result.returncode != 0
        assert f"SIGMASIGHT_MARKET_DATA_SOURCE={value!r} must be one of" in result.stderr
