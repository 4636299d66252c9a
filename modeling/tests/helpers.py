"""The modeling tests' dates, a synthetic price fetch, the what-if session calls through the API
and an independent FIX parser; the fixtures (`market`, `portfolio`) are in conftest.py."""

from __future__ import annotations

from datetime import date

from marketdata.calendar import sessions_back
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import current_prices, prices_fetch_and_cache

AS_OF = date(2026, 11, 20)
EXPIRY = date(2027, 1, 15)
STOCKS = ["AAPL", "MSFT", "JPM", "XOM", "NVDA"]
SESSIONS = "/api/v1/modeling/sessions/"


def fetch(symbols: list[str], sessions: int = 270) -> None:
    prices_fetch_and_cache(
        symbols=symbols,
        start=sessions_back(AS_OF, sessions)[0],
        end=AS_OF,
        providers=[SyntheticProvider()],
    )


def close(symbol: str) -> float:
    return float(current_prices([symbol], as_of=AS_OF)[symbol].price)


# --- a what-if session through the API --------------------------------------------------------


def open_session(client, portfolio, as_of: date | None = AS_OF) -> int:
    body = {"portfolio": portfolio.pk, "name": "what if"}
    if as_of is not None:
        body["as_of"] = as_of.isoformat()
    response = client.post(SESSIONS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def add(client, session_id: int, **trade) -> dict:
    response = client.post(f"{SESSIONS}{session_id}/trades/", trade, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def calculate(client, session_id: int) -> dict:
    response = client.post(f"{SESSIONS}{session_id}/calculate/")
    assert response.status_code == 200, response.content
    return response.json()


# --- FIX --------------------------------------------------------------------------------------


def parse_fix(message: bytes) -> list[tuple[str, str]]:
    """Split one SOH-delimited message into (tag, value) pairs after checking, from the raw
    bytes, that it starts with 8= and 9=, that 9 is the byte count from after the 9 field to
    the SOH before 10=, and that 10 is the byte sum before `10=` modulo 256 in three digits."""
    assert message.endswith(b"\x01"), "a message ends with SOH"
    fields = message[:-1].split(b"\x01")
    pairs = [(tag, value) for tag, value in (f.decode("ascii").split("=", 1) for f in fields)]
    assert [tag for tag, _ in pairs[:2]] == ["8", "9"] and pairs[-1][0] == "10"
    start = len(fields[0]) + 1 + len(fields[1]) + 1
    trailer_at = message.rindex(b"\x0110=") + 1
    assert int(pairs[1][1]) == trailer_at - start, "BodyLength"
    assert len(pairs[-1][1]) == 3
    assert int(pairs[-1][1]) == sum(message[:trailer_at]) % 256, "CheckSum"
    return pairs
