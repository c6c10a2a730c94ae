"""Geometry of the report's tokens-per-example histogram, drawn as SVG by the template (no JavaScript)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.datasets.validation.stats import Bin

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 52  # room for axis labels


@dataclass(frozen=True)
class Bar:
    """One bar in SVG coordinates, with what its tooltip says."""

    x: float
    y: float
    width: float
    height: float
    count: int
    low: int
    high: int


@dataclass(frozen=True)
class Tick:
    """An axis tick: position and label."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG template needs."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]


def _nice_step(top: int, ticks: int = 4) -> int:
    raw = max(1, top / ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return int(factor * magnitude)
    return int(10 * magnitude)


def _short(n: int) -> str:
    return f"{n / 1000:.1f}k".replace(".0k", "k") if n >= 10_000 else f"{n:,}"


def histogram_chart(bins: list[Bin]) -> Chart | None:
    """Lay out `bins` as bars with labelled axes (x: tokens per example, y: examples)."""
    if not bins:
        return None
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_count = max(b.count for b in bins)
    step = _nice_step(top_count)
    y_max = max(step, math.ceil(top_count / step) * step)
    bar_w = plot_w / len(bins)
    bars = []
    for i, b in enumerate(bins):
        h = plot_h * b.count / y_max
        bars.append(Bar(LEFT + i * bar_w + 1, TOP + plot_h - h, max(bar_w - 2, 1), h, b.count, b.low, b.high))
    y_ticks = [Tick(TOP + plot_h - plot_h * v / y_max, f"{v:,}") for v in range(0, y_max + 1, step)]
    every = max(1, math.ceil(len(bins) / 5))
    x_ticks = [Tick(LEFT + i * bar_w, _short(b.low)) for i, b in enumerate(bins) if i % every == 0]
    x_ticks.append(Tick(LEFT + plot_w, _short(bins[-1].high)))
    return Chart(WIDTH, HEIGHT, LEFT, TOP, plot_w, plot_h, bars, x_ticks, y_ticks)
