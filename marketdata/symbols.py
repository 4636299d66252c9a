"""OCC option symbols: `AAPL250117C00200000` = root, YYMMDD expiry, C/P, strike x 1000 (8 digits).

Accepted with or without the 21-character padding (`AAPL  250117C00200000`), any case; roots of
one to six characters, letters, digits and dots (`BRK.B`). `build_occ` writes the compact form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

_OCC = re.compile(
    r"^(?P<root>[A-Z0-9.]{1,6}?)\s*(?P<yymmdd>\d{6})(?P<right>[A-Z])(?P<strike>\d{8})$"
)
_TICKER = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,15}$")


class SymbolError(ValueError):
    """A symbol that cannot be an instrument; the message says why."""


@dataclass(frozen=True)
class OccSymbol:
    root: str
    expiration: date
    option_type: str  # "C" or "P"
    strike: Decimal

    @property
    def symbol(self) -> str:
        return build_occ(self.root, self.expiration, self.option_type, self.strike)


def looks_like_occ(symbol: str) -> bool:
    return bool(_OCC.match(symbol.strip().upper()))


def parse_occ(symbol: str) -> OccSymbol:
    text = symbol.strip().upper()
    match = _OCC.match(text)
    if not match:
        raise SymbolError(
            f"'{symbol}' is not an OCC option symbol (ROOT + YYMMDD + C/P + 8-digit strike)."
        )
    root = match["root"]
    if root.startswith(".") or root.endswith("."):
        raise SymbolError(f"'{symbol}': the root '{root}' is not a ticker.")
    right = match["right"]
    if right not in {"C", "P"}:
        raise SymbolError(f"'{symbol}': the right must be C or P, not '{right}'.")
    yymmdd = match["yymmdd"]
    try:
        expiration = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError as exc:
        raise SymbolError(f"'{symbol}': '{yymmdd}' is not a real expiration date.") from exc
    strike = Decimal(match["strike"]) / 1000
    if strike <= 0:
        raise SymbolError(f"'{symbol}': the strike must be positive.")
    return OccSymbol(root, expiration, right, strike)


def build_occ(root: str, expiration: date, option_type: str, strike: Decimal | float) -> str:
    root = root.strip().upper()
    option_type = option_type.strip().upper()
    if not 1 <= len(root) <= 6:
        raise SymbolError(f"'{root}' is not a 1-6 character option root.")
    if option_type not in {"C", "P"}:
        raise SymbolError(f"The option type must be C or P, not '{option_type}'.")
    if not 2000 <= expiration.year <= 2099:
        raise SymbolError(
            f"An OCC symbol cannot hold the expiration {expiration} (2000-2099 only)."
        )
    thousandths = Decimal(str(strike)) * 1000
    if thousandths <= 0 or thousandths != thousandths.to_integral_value():
        raise SymbolError(f"Strike {strike} must be positive with at most three decimals.")
    if thousandths >= 10**8:
        raise SymbolError(f"Strike {strike} is too large for an OCC symbol.")
    return f"{root}{expiration:%y%m%d}{option_type}{int(thousandths):08d}"


def normalize_ticker(symbol: str) -> str:
    """Upper-case and validate a plain ticker (stocks, ETFs, indices like ^VIX, rate names)."""
    text = symbol.strip().upper()
    if not _TICKER.match(text):
        raise SymbolError(f"'{symbol}' is not a valid ticker.")
    return text
