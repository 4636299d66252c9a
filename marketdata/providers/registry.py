"""Which providers serve which data, from settings: the fallback chains the services walk."""

from __future__ import annotations

from django.conf import settings

from marketdata.providers.base import MarketDataProvider
from marketdata.providers.synthetic import SyntheticProvider


def _source() -> str:
    source = settings.SIGMASIGHT_MARKET_DATA_SOURCE
    if source == "auto":
        return "polygon" if settings.POLYGON_API_KEY else "synthetic"
    return source


def _polygon() -> MarketDataProvider:
    from marketdata.providers.polygon import PolygonProvider

    assert settings.POLYGON_API_KEY  # the settings refuse the polygon source without one
    return PolygonProvider(
        settings.POLYGON_API_KEY,
        tier=settings.POLYGON_TIER,
        base_url=settings.POLYGON_BASE_URL,
        connect_timeout=settings.SIGMASIGHT_MARKET_DATA_CONNECT_TIMEOUT,
        read_timeout=settings.SIGMASIGHT_MARKET_DATA_READ_TIMEOUT,
    )


def _yahoo() -> MarketDataProvider:
    from marketdata.providers.yahoo import YahooProvider

    return YahooProvider(
        cache_dir=settings.SIGMASIGHT_YFINANCE_CACHE_DIR,
        timeout=settings.SIGMASIGHT_MARKET_DATA_READ_TIMEOUT,
    )


def chain() -> list[MarketDataProvider]:
    """The fallback chain every fetch walks. With Polygon first, yfinance backs it up for prices
    and chains and answers what Polygon does not offer here (sectors and Treasury yields: Polygon
    raises NotSupported, so the services move on to the next provider). The csv source (people
    who bring their own prices) has no chain: nothing is fetched or synthesized, and whatever the
    cache lacks is reported missing."""
    source = _source()
    if source == "csv":
        return []
    if source == "polygon":
        return [_polygon(), _yahoo()]
    if source == "yfinance":
        return [_yahoo()]
    return [SyntheticProvider()]


def current_source() -> str:
    """Where prices come from: synthetic, polygon, yfinance or csv (`auto` resolved)."""
    return _source()
