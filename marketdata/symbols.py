"""OCC option symbols: `AAPL250117C00200000` = root, YYMMDD expiry, C/P, strike x 1000 (8 digits).

Accepted with or without the 21-character padding (`AAPL  250117C00200000`), any case; roots of
one to six characters, letters, digits and dots (`BRK.B`). `build_occ` writes the compact form.

`exercise_style` says how a root's contracts exercise: European for the cash-settled index
options, American for everything else (single stocks and ETFs).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from django.conf import settings

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


# Pure functions of a symbol, called for every held symbol in every chunk of every job: each
# distinct symbol is parsed once per process (an error is raised again each time, not kept).
_SYMBOLS_KEPT = 1 << 16


@lru_cache(maxsize=_SYMBOLS_KEPT)
def looks_like_occ(symbol: str) -> bool:
    return bool(_OCC.match(symbol.strip().upper()))


@lru_cache(maxsize=_SYMBOLS_KEPT)
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


@lru_cache(maxsize=_SYMBOLS_KEPT)
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


@lru_cache(maxsize=_SYMBOLS_KEPT)
def normalize_ticker(symbol: str) -> str:
    """Upper-case and validate a plain ticker (stocks, ETFs, indices like ^VIX, rate names)."""
    text = symbol.strip().upper()
    if not _TICKER.match(text):
        raise SymbolError(f"'{symbol}' is not a valid ticker.")
    return text


ExerciseStyle = Literal["american", "european"]
AMERICAN: ExerciseStyle = "american"
EUROPEAN: ExerciseStyle = "european"

# Cash-settled index options, European by their exchange's rules (Cboe, Nasdaq): S&P 500 (SPX,
# its weeklies SPXW, the mini XSP), Nasdaq-100 (NDX, NDXP, the micro XND), Russell 2000 (RUT,
# RUTW, MRUT), the Dow (DJX), VIX (VIX, VIXW), the European S&P 100 (XEO; OEX is American) and
# MSCI EAFE / Emerging Markets (MXEA, MXEF). An index ticker's caret is ignored (^SPX is SPX).
EUROPEAN_ROOTS: frozenset[str] = frozenset(
    {
        "SPX",
        "SPXW",
        "XSP",
        "NDX",
        "NDXP",
        "XND",
        "RUT",
        "RUTW",
        "MRUT",
        "DJX",
        "VIX",
        "VIXW",
        "XEO",
        "MXEA",
        "MXEF",
    }
)


def _european(extra: Collection[str] | None) -> frozenset[str]:
    if extra is None:
        extra = settings.SIGMASIGHT_EUROPEAN_UNDERLYINGS
    return EUROPEAN_ROOTS | {s.strip().upper().lstrip("^") for s in extra}


def exercise_style(underlying: str, extra_european: Collection[str] | None = None) -> ExerciseStyle:
    """ "european" for a cash-settled index root (EUROPEAN_ROOTS) or one of `extra_european`
    (None: the setting SIGMASIGHT_EUROPEAN_UNDERLYINGS), "american" for anything else. Reads
    nothing but that setting; pass the roots to use it without Django configured."""
    root = underlying.strip().upper().lstrip("^")
    return EUROPEAN if root in _european(extra_european) else AMERICAN


def exercise_styles(
    underlyings: pd.Series, extra_european: Collection[str] | None = None
) -> pd.Series:
    """`exercise_style` of every underlying of a Series, on its index (a book at once)."""
    roots = underlyings.astype(str).str.strip().str.upper().str.lstrip("^")
    styles = np.where(roots.isin(_european(extra_european)), EUROPEAN, AMERICAN)
    return pd.Series(styles, index=underlyings.index, dtype=object, name=underlyings.name)
