"""Constants the analytics tests (and the tests of the apps above) share."""

from __future__ import annotations

from datetime import date

AS_OF = date(2026, 11, 20)
EXP = date(2027, 1, 15)
# Every factor proxy and rate series: a book's factor betas need a year of each.
SERIES = [
    "SPY",
    "VTV",
    "VUG",
    "MTUM",
    "QUAL",
    "SIZE",
    "USMV",
    "US10Y",
    "US3M",
    "USO",
    "GLD",
    "EWG",
    "EEM",
    "FXI",
    "VIXY",
    "HYG",
    "JETS",
    "XLK",
]
