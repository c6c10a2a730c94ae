"""The cyclic garbage collector paused while a pass builds hundreds of thousands of objects that hold no cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector (reference counting still frees everything).

    Parsed JSON and rows read from the database hold no cycles, yet every few thousand new containers the collector
    walks every object made so far: a third of `tuneboard check`'s time and of the report's quality pass at 100,000
    examples (bench/check_speed.py, bench/quality_pass.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
