"""Report charts drawn with matplotlib's Agg canvas, returned as PNG bytes.

Each chart is its own `Figure` on a `FigureCanvasAgg`: no pyplot, so no global figure state, no
GUI backend and nothing shared between two reports drawn at once by threads of a worker.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

DPI = 120
WIDTH = 7.5  # inches: the printable width of A4 at the report's margins
GAIN, LOSS, LINE = "#2e7d32", "#c62828", "#1f4e79"
PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c"]


class MoneyFormatter(Formatter):
    """Amounts in k, M or B with the fewest decimals that show every tick exactly."""

    scale, suffix, decimals = 1.0, "", 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        top = max((abs(v) for v in locs), default=0.0)
        self.scale, self.suffix = next(
            (
                (scale, suffix)
                for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k"))
                if top >= scale
            ),
            (1.0, ""),
        )
        scaled = [v / self.scale for v in locs]
        self.decimals = next(
            (d for d in range(3) if all(abs(v - round(v, d)) < 1e-9 for v in scaled)), 3
        )

    def __call__(self, value: float, pos: int | None = None) -> str:
        if value == 0:
            return "0"
        return f"{value / self.scale:.{self.decimals}f}{self.suffix}"


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _style(axes, title: str) -> None:
    axes.set_title(title, fontsize=10, loc="left")
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.tick_params(labelsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _dates(axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def equity_and_pnl(
    dates: Sequence[date], equity: Sequence[float], pnl: Sequence[float], currency: str
) -> bytes:
    """Equity (line) above daily P&L (bars, gains green, losses red) on a shared date axis."""
    figure = _figure(4.2)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.plot(dates, equity, color=LINE, linewidth=1.6)
    _style(top, f"Equity ({currency})")
    top.yaxis.set_major_formatter(MoneyFormatter())
    values = np.asarray(pnl, dtype=float)
    bottom.bar(dates, values, color=np.where(values >= 0, GAIN, LOSS), width=0.8)
    bottom.axhline(0, color="#555555", linewidth=0.6)
    _style(bottom, f"Daily P&L ({currency})")
    bottom.yaxis.set_major_formatter(MoneyFormatter())
    _dates(bottom)
    return _png(figure)


def lines(
    dates: Sequence[date],
    series: Mapping[str, Sequence[float]],
    title: str,
    *,
    money: bool = True,
) -> bytes:
    """Several series over time (exposures, factor betas); one marker per point when short."""
    figure = _figure(3.2)
    axes = figure.subplots()
    marker = "o" if len(dates) < 20 else None
    for index, (label, values) in enumerate(series.items()):
        # matplotlib plots dates through its unit converters; its stubs accept only numbers.
        axes.plot(
            dates,  # type: ignore[arg-type]
            values,
            label=label,
            color=PALETTE[index % len(PALETTE)],
            linewidth=1.4,
            marker=marker,
            markersize=3,
        )
    axes.axhline(0, color="#555555", linewidth=0.6)
    _style(axes, title)
    if money:
        axes.yaxis.set_major_formatter(MoneyFormatter())
    _dates(axes)
    figure.legend(fontsize=7, ncols=min(len(series), 7), loc="outside lower center", frameon=False)
    return _png(figure)


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    *,
    money: bool = True,
) -> bytes:
    """Horizontal bars, one per label in the order given (top first), gains green, losses red."""
    widths = np.asarray(values, dtype=float)
    figure = _figure(max(1.6, 0.7 + 0.2 * len(labels)))
    axes = figure.subplots()
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions, widths, color=np.where(widths >= 0, GAIN, LOSS), height=0.7)
    axes.set_yticks(positions, labels=list(labels))
    axes.axvline(0, color="#555555", linewidth=0.6)
    _style(axes, title)
    if money:
        axes.xaxis.set_major_formatter(MoneyFormatter())
    return _png(figure)


def greeks_by_underlying(
    underlyings: Sequence[str], greeks: Mapping[str, Sequence[float]]
) -> bytes:
    """One panel per Greek (dollar delta, gamma, theta, vega), a bar per underlying."""
    figure = _figure(5.6)
    panels = figure.subplots(2, 2, sharex=True).ravel()
    positions = np.arange(len(underlyings))
    for axes, (label, values) in zip(panels, greeks.items(), strict=True):
        heights = np.asarray(values, dtype=float)
        axes.bar(positions, heights, color=np.where(heights >= 0, GAIN, LOSS), width=0.7)
        axes.axhline(0, color="#555555", linewidth=0.6)
        _style(axes, label)
        if label.lower().startswith("dollar"):
            axes.yaxis.set_major_formatter(MoneyFormatter())
    for axes in panels:
        axes.set_xticks(positions, labels=list(underlyings), rotation=60, fontsize=7)
        axes.tick_params(axis="x", labelbottom=True)
    return _png(figure)
