"""Providers the marketdata tests (and the tests of the apps above) share: the synthetic market
counting or failing its calls, and the real Polygon client against the loopback replay server
with the hand-made recordings under recordings/polygon/."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from marketdata.providers.polygon import PolygonProvider
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.tests.replay import ReplayServer, recording


class CountingSynthetic(SyntheticProvider):
    """The real synthetic provider, recording what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], date, date]] = []

    def daily_bars(self, symbols, start, end):
        self.calls.append((tuple(symbols), start, end))
        return super().daily_bars(symbols, start, end)


class FailsOnSecondCall(SyntheticProvider):
    """The real synthetic market, except its second `daily_bars` call crashes (a bug, not a
    provider error: nothing catches it)."""

    def __init__(self) -> None:
        self.calls = 0

    def daily_bars(self, symbols, start, end):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("provider bug")
        return super().daily_bars(symbols, start, end)


# --- Polygon against the replay server --------------------------------------------------------

START = date(2020, 1, 2)
END = date(2020, 1, 8)
AAPL_PATH = "/v2/aggs/ticker/AAPL/range/1/day/2020-01-02/2020-01-08"
AAPL_PAGE2_PATH = "/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-08"
MSFT_PATH = "/v2/aggs/ticker/MSFT/range/1/day/2020-01-02/2020-01-08"
ZZZZ_PATH = "/v2/aggs/ticker/ZZZZ/range/1/day/2020-01-02/2020-01-08"
CHAIN_PATH = "/v3/snapshot/options/AAPL"


def polygon(*name: str) -> Any:
    return recording("polygon", *name)


def provider_for(server: ReplayServer, sleeps: list[float], **overrides: Any) -> PolygonProvider:
    options: dict[str, Any] = {
        "tier": "starter",
        "base_url": server.url,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "backoff_base": 0.001,
        "backoff_cap": 0.01,
        "sleep": sleeps.append,
        "rng": random.Random(7),
    }
    options.update(overrides)
    return PolygonProvider("test-key", **options)
