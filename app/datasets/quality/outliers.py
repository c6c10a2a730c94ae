"""Outliers: examples far longer or shorter than the rest of their dataset, in tokens, turns or answer length.

Robust on purpose: lengths are compared on a log scale against the median, in units of the median absolute
deviation (MAD x 1.4826, a standard deviation for normal data), so a few huge examples cannot hide themselves by
inflating the spread as they would a mean and standard deviation. An example is an outlier when its modified
z-score is beyond Z_LIMIT. The spread is at least MIN_SPREAD (a factor of ~1.28 on the log scale) so that a
dataset whose examples are nearly all alike (every one has 3 messages) does not flag a 4-message example.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Z_LIMIT = 3.5  # Iglewicz and Hoaglin's cut-off for the modified z-score
MIN_SPREAD = 0.25  # natural-log units
MIN_EXAMPLES = 20  # fewer examples make no distribution to stand out from
# measure -> (problem code, what it measures)
MEASURES: dict[str, tuple[str, str]] = {
    "tokens": ("outlier_tokens", "tokens"),
    "turns": ("outlier_turns", "messages"),
    "answer": ("outlier_answer", "assistant tokens"),
}


@dataclass(frozen=True)
class Outlier:
    """One example's measure that stands out: its value, the dataset's median, and which way ("long" | "short")."""

    example_id: int
    measure: str  # "tokens" | "turns" | "answer"
    value: int
    median: float
    direction: str

    @property
    def code(self) -> str:
        """The problem code (outlier_tokens, outlier_turns, outlier_answer)."""
        return MEASURES[self.measure][0]

    def message(self) -> str:
        """A plain sentence for the report and the example list."""
        unit = MEASURES[self.measure][1]
        return (
            f"The example has {self.value:,} {unit}; the dataset's median is {self.median:,.0f}, "
            f"so it is unusually {self.direction}."
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report API."""
        return {
            "example_id": self.example_id,
            "measure": self.measure,
            "code": self.code,
            "value": self.value,
            "median": self.median,
            "direction": self.direction,
        }


def _median(values: np.ndarray) -> float:
    ordered = np.sort(values)
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (float(ordered[middle - 1]) + float(ordered[middle])) / 2


def outliers_of(measure: str, values: Mapping[int, int]) -> list[Outlier]:
    """The examples whose `measure` (example id -> value) stands out from the others'."""
    if len(values) < MIN_EXAMPLES:
        return []
    # numpy for 100,000 examples (the report's quality pass); every step is an exact IEEE operation, so the
    # result is the one plain Python floats give. log1p stays math's (numpy's SIMD one may differ in the last
    # bit), once per distinct value: lengths repeat.
    raw = list(values.values())
    log_of = {v: math.log1p(max(v, 0)) for v in set(raw)}
    logs = np.fromiter(map(log_of.__getitem__, raw), dtype=np.float64, count=len(raw))
    centre = _median(logs)
    spread = max(1.4826 * _median(np.abs(logs - centre)), MIN_SPREAD)
    median = _median(np.array(raw, dtype=np.float64))
    z = (logs - centre) / spread
    ids = list(values)
    found = []
    for row in sorted(np.flatnonzero(np.abs(z) > Z_LIMIT).tolist(), key=ids.__getitem__):
        i = ids[row]
        found.append(Outlier(i, measure, values[i], median, "long" if z[row] > 0 else "short"))
    return found


def outliers(rows: Iterable[tuple[int, int, int, int]]) -> list[Outlier]:
    """The outliers among (example id, tokens, turns, answer tokens) of a dataset's valid examples, by measure and
    then example id."""
    listed = list(rows)
    found: list[Outlier] = []
    for column, measure in enumerate(MEASURES, start=1):
        found.extend(outliers_of(measure, {r[0]: r[column] for r in listed if r[column] is not None}))
    return found
