"""Statistics for eval results: pass rates and win rates with 95% Wilson intervals, and which items changed outcome."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z_95 = 1.96


@dataclass(frozen=True)
class Rate:
    """A proportion out of `n` with its confidence interval; `value` is None when n is 0 (nothing to measure)."""

    value: float | None
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The rate as plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class WinRate(Rate):
    """A's win rate over B, ties counted as half a win, with the counts it came from."""

    wins: int = 0
    losses: int = 0
    ties: int = 0


def wilson_interval(passed: float, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `passed` successes out of `total` ((0, 1) when total is 0)."""
    if total < 0 or passed < 0 or passed > total:
        raise ValueError(f"need 0 <= passed <= total, got {passed} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = passed / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    # The interval always holds p; rounding alone could put an end a hair past it (at 0 or 1 passed, say).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def pass_rate(passed: int, total: int) -> Rate:
    """The share of items that passed, with its 95% Wilson interval."""
    low, high = wilson_interval(passed, total)
    return Rate(passed / total if total else None, low, high, total)


def win_rate(wins: int, losses: int, ties: int) -> WinRate:
    """A's win rate over B, ties counted as half a win; the interval is Wilson's on (wins + ties / 2) out of n.

    Wilson on a half-counted tie is an approximation (ties make the outcome three-valued); it is close enough to say
    whether one model is clearly preferred, which is what the number is for.
    """
    n = wins + losses + ties
    score = wins + ties / 2
    low, high = wilson_interval(score, n)
    return WinRate(score / n if n else None, low, high, n, wins, losses, ties)


@dataclass(frozen=True)
class ChangedItems:
    """Items graded in both runs whose outcome differs: fixed (failed in A, passed in B) and broken (the reverse)."""

    fixed: list[int]
    broken: list[int]
    both: int

    @property
    def p_value(self) -> float:
        """McNemar's exact two-sided p-value for the difference (1.0 when nothing changed)."""
        return mcnemar_exact(len(self.fixed), len(self.broken))


def changed_items(passed_a: dict[int, bool], passed_b: dict[int, bool]) -> ChangedItems:
    """Compare two runs' pass/fail per item index (items missing from either run are left out)."""
    both = sorted(set(passed_a) & set(passed_b))
    fixed = [index for index in both if not passed_a[index] and passed_b[index]]
    broken = [index for index in both if passed_a[index] and not passed_b[index]]
    return ChangedItems(fixed, broken, len(both))


def mcnemar_exact(fixed: int, broken: int) -> float:
    """McNemar's exact test: the two-sided binomial p-value of `fixed` against `broken` changed items."""
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broken) + 1))
    return min(1.0, 2 * tail / 2**n)
