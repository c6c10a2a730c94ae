"""The seeded train/validation split, shared by the dataset page's "Split randomly" and `tuneboard prepare`."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def random_split(items: Sequence[T], percent: float, seed: int | str = 0) -> tuple[list[T], list[T]]:
    """(validation, train): `percent`% of `items` (rounded) drawn in a seeded random order, the same for a seed.

    The order is a shuffle of `items` as given, so the same count and seed pick the same positions: a file split by
    `tuneboard prepare` matches the dashboard's split of that file imported (examples in file order)."""
    order = list(items)
    random.Random(str(seed)).shuffle(order)
    n_validation = round(len(order) * percent / 100)
    return order[:n_validation], order[n_validation:]
