"""How many threads one decode step should use: more than one only while no other process wants the cores.

Why: a decoded token is ~600 small torch calls; a second OpenMP thread speeds up its matmuls ~1.5x only if that
thread is already awake (a short spin, GOMP_SPINCOUNT, set in _hf.set_spin) and has a core to itself. When another
process (a training job, another request's process) is busy, each parallel matmul waits for a descheduled thread
and decoding collapses (87 -> 7 tokens/s measured), so the step falls back to one thread, which never waits.
The other processes' load is read from /proc/stat over a short window, minus this process's own CPU time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

WINDOW_S = 0.2  # how often the machine's load is re-read; /proc/stat counts in 10 ms ticks
MAX_DECODE_THREADS = 4  # more threads than this only add wake-ups for matrices this small
_BUSY_SLACK = 0.25  # cores' worth of other work (daemons, a logger) still treated as idle


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy so far, or None where /proc/stat is missing (not Linux)."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait; user, nice, system, irq, softirq and steal are busy
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


class CoreShare:
    """Tracks the CPU time other processes used over the last window; `threads(available)` answers from it."""

    def __init__(self, window_s: float = WINDOW_S, machine=_busy_seconds, own=time.process_time, clock=time.monotonic):
        self.window_s = window_s
        self._machine, self._own, self._clock = machine, own, clock  # injectable for tests
        self._lock = threading.Lock()
        self._mark: tuple[float, float, float] | None = None  # (wall, machine busy, own process) at window start
        self._others = float("inf")  # busy cores used by other processes in the last full window; unknown yet
        self._decoding = 0  # conversations of this process decoding now (each would bring its own threads)

    def _sample(self) -> None:
        now = self._clock()
        if self._mark is not None and now - self._mark[0] < self.window_s:
            return
        busy_now = self._machine()
        if busy_now is None:
            return
        own = self._own()
        if self._mark is not None:
            wall, busy, mine = self._mark
            self._others = max(0.0, (busy_now - busy) - (own - mine)) / (now - wall)
        self._mark = (now, busy_now, own)

    def others_busy(self) -> float:
        """Cores' worth of CPU that other processes used in the last window (inf until one window has passed)."""
        with self._lock:
            self._sample()
            return self._others

    @contextlib.contextmanager
    def decoding(self):
        """Mark a decode step of this process as running (two conversations at once get one thread each)."""
        with self._lock:
            self._decoding += 1
        try:
            yield
        finally:
            with self._lock:
                self._decoding -= 1

    def threads(self, available: int) -> int:
        """Threads for the next decode step: 1 unless `available` cores are (nearly) all free of other work."""
        if available <= 1 or self._decoding > 1:
            return 1
        free = available - self.others_busy() + _BUSY_SLACK  # -inf before the first window: one thread
        return max(1, min(int(free), available, MAX_DECODE_THREADS)) if free > 1 else 1
