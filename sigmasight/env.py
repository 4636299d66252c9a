"""Strict readers for environment variables.

Settings are read once at import; a value that does not parse stops the process with
ImproperlyConfigured instead of falling back to a default nobody asked for.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSET = object()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | object = _UNSET) -> str:
    value = _raw(name)
    if value is not None:
        return value
    if default is _UNSET:
        raise ImproperlyConfigured(f"Environment variable {name} is required.")
    return default  # type: ignore[return-value]


def env_optional(name: str) -> str | None:
    return _raw(name)


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={value!r} is not a boolean; use one of "
        f"{sorted(_TRUE | _FALSE)}."
    )


def _parsed(name: str, default: T, parse: Callable[[str], T], kind: str) -> T:
    value = _raw(name)
    if value is None:
        return default
    try:
        return parse(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not {kind}.") from exc


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    result = _parsed(name, default, int, "an integer")
    if minimum is not None and result < minimum:
        raise ImproperlyConfigured(f"Environment variable {name} must be at least {minimum}.")
    return result


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


_RATE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


def env_rate(name: str, default: str) -> str:
    """A throttle rate such as ``100/min``; validated here so a typo fails at start-up."""
    value = _raw(name) or default
    count, _, period = value.partition("/")
    if not count.isdigit() or period not in _RATE_PERIODS:
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not a rate like '100/min'."
        )
    return value


_TICKER = re.compile(r"[A-Z0-9][A-Z0-9.]{0,15}")


def env_tickers(name: str) -> frozenset[str]:
    """Comma-separated tickers or option roots (`SPX, ndx, ^RUT`), upper-cased, an index's caret
    dropped. Anything else (`SPX;NDX`, `S P X`) is refused, not read as some other ticker."""
    tickers = set()
    for item in env_list(name):
        ticker = item.upper().removeprefix("^")
        if not _TICKER.fullmatch(ticker):
            raise ImproperlyConfigured(
                f"Environment variable {name} holds {item!r}, which is not a ticker "
                "(letters, digits and dots; comma-separated)."
            )
        tickers.add(ticker)
    return frozenset(tickers)


def env_float(name: str, default: float) -> float:
    return _parsed(name, default, float, "a number")


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def env_networks(name: str) -> list[IPNetwork]:
    """Comma-separated IP addresses and CIDR networks (`10.0.0.0/8, 192.0.2.7, ::1`). An address
    with bits set past its prefix (`10.0.0.5/8`) is refused: it is more likely a typo than the
    network it would silently widen to."""
    networks = []
    for item in env_list(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"Environment variable {name} holds {item!r}, which is not an IP address or "
                f"network ({exc})."
            ) from exc
    return networks
