from __future__ import annotations

import pytest

from marketdata.providers import registry
from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.providers.yahoo import YahooProvider


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
