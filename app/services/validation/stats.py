"""Summary statistics (true percentiles) and histogram bins for the report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Summary:
    """Distribution of one quantity over examples."""

    total: int
    min: int
    max: int
    mean: float
    median: float
    p5: float
    p95: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready form."""
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th quantile (0..1) by linear interpolation between closest ranks (numpy's default, 'inclusive')."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarize(values: Sequence[int]) -> Summary | None:
    """min, max, mean, median, p5 and p95 of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    total = sum(ordered)
    return Summary(
        total=total,
        min=ordered[0],
        max=ordered[-1],
        mean=round(total / len(ordered), 1),
        median=percentile(ordered, 0.5),
        p5=round(percentile(ordered, 0.05), 1),
        p95=round(percentile(ordered, 0.95), 1),
    )


@dataclass(frozen=True)
class Bin:
    """One histogram bar: examples with low <= tokens < high (the last bin includes its high edge)."""

    low: int
    high: int
    count: int


def histogram(values: Sequence[int], max_bins: int = 20) -> list[Bin]:
    """Equal-width integer bins covering min..max; at most `max_bins` bars."""
    if not values:
        return []
    low, high = min(values), max(values)
    span = high - low + 1
    width = max(1, math.ceil(span / max_bins))
    n_bins = math.ceil(span / width)
    counts = [0] * n_bins
    for v in values:
        counts[(v - low) // width] += 1
    return [Bin(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts)]
