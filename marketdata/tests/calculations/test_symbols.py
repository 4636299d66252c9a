from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata.symbols import SymbolError, build_occ, looks_like_occ, normalize_ticker, parse_occ


@pytest.mark.parametrize(
    "text",
    [
        "AAPL250117C00200000",
        "AAPL  250117C00200000",
        "aapl250117c00200000",
        " AAPL250117C00200000 ",
    ],
)
def test_parse_occ_accepts_compact_padded_and_lower_case(text):
    occ = parse_occ(text)
    assert (occ.root, occ.expiration, occ.option_type, occ.strike) == (
        "AAPL",
        date(2025, 1, 17),
        "C",
        Decimal("200"),
    )
    assert occ.symbol == "AAPL250117C00200000"


def test_parse_occ_roots_with_digits_and_dots_and_fractional_strikes():
    assert parse_occ("BRK.B 250620P00450500").strike == Decimal("450.5")
    assert parse_occ("BRK.B250620P00450500").root == "BRK.B"
    assert parse_occ("SPXW  250321C05600000").strike == Decimal("5600")
    assert parse_occ("X1250117P00001500").root == "X1"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("AAPL250230C00200000", "not a real expiration"),
        ("AAPL251317C00200000", "not a real expiration"),
        ("AAPL250117C00000000", "strike must be positive"),
        ("AAPL250117X00200000", "right must be C or P"),
        ("TOOLONGX250117C00200000", "not an OCC option symbol"),
        ("AAPL", "not an OCC option symbol"),
        ("AAPL250117C0020000", "not an OCC option symbol"),
    ],
)
def test_parse_occ_rejects_with_reason(text, reason):
    with pytest.raises(SymbolError, match=reason):
        parse_occ(text)


def test_build_occ_round_trips_and_validates():
    symbol = build_occ("brk.b", date(2025, 6, 20), "p", Decimal("450.5"))
    assert symbol == "BRK.B250620P00450500"
    assert parse_occ(symbol).symbol == symbol
    with pytest.raises(SymbolError):
        build_occ("AAPL", date(2025, 1, 17), "C", Decimal("0"))
    with pytest.raises(SymbolError):
        build_occ("AAPL", date(2025, 1, 17), "C", Decimal("1.0005"))
    with pytest.raises(SymbolError):
        build_occ("AAPL", date(2025, 1, 17), "Q", Decimal("10"))


def test_tickers_and_occ_are_told_apart():
    assert looks_like_occ("AAPL250117C00200000")
    assert not looks_like_occ("AAPL")
    assert normalize_ticker(" brk.b ") == "BRK.B"
    assert normalize_ticker("^tnx") == "^TNX"
    for bad in ["", "A B", "$$$", "A" * 20]:
        with pytest.raises(SymbolError):
            normalize_ticker(bad)
