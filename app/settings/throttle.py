"""The login throttle: failed logins make later attempts wait longer, per client and for everyone together.

A delay, never a refusal: the owner typing the right password gets in after the wait, however many others
failed. Attempts from one client are checked one at a time, so sending them in parallel gains nothing; the
global count slows guessing spread over many addresses, with a shorter ceiling so the owner is only slowed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

FIRST_DELAY_SECONDS = 1.0
# Beyond this many tracked clients, those whose failures have drained away are forgotten.
PRUNE_ABOVE = 1000


@dataclass
class LeakyCount:
    """A count of failures that drains at a steady rate (so a client who stops is soon forgiven)."""

    level: float = 0.0
    at: float = 0.0

    def value(self, now: float, per_second: float) -> float:
        """The count as of now."""
        return max(0.0, self.level - (now - self.at) * per_second)

    def add(self, now: float, per_second: float) -> None:
        """One more failure."""
        self.level, self.at = self.value(now, per_second) + 1, now


@dataclass
class Attempt:
    """One login attempt's outcome, set by the caller once the password was checked (None: not checked)."""

    ok: bool | None = None


def growing_delay(failures: float, allowed: int, ceiling: float) -> float:
    """No wait while failures stay under the allowance, then 1 s, 2 s, 4 s … up to the ceiling."""
    excess = failures - allowed + 1
    if excess <= 0:
        return 0.0
    return min(ceiling, FIRST_DELAY_SECONDS * 2 ** (excess - 1))


class LoginThrottle:
    """Delays login attempts after failures: `per_minute` per client and `global_per_minute` in all go free."""

    def __init__(
        self,
        per_minute: int,
        global_per_minute: int,
        max_delay: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.per_minute = per_minute
        self.global_per_minute = global_per_minute
        self.max_delay = max_delay
        self.clock = clock
        self.sleep = sleep
        self._clients: dict[str, LeakyCount] = {}
        self._everyone = LeakyCount()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def delay_for(self, client: str) -> float:
        """How long the next attempt from this client waits before its password is checked."""
        now = self.clock()
        own = self._clients.get(client, LeakyCount()).value(now, self.per_minute / 60)
        everyone = self._everyone.value(now, self.global_per_minute / 60)
        return max(
            growing_delay(own, self.per_minute, self.max_delay),
            growing_delay(everyone, self.global_per_minute, self.max_delay / 3),
        )

    @asynccontextmanager
    async def attempt(self, client: str) -> AsyncIterator[Attempt]:
        """Wait for this client's earlier attempts and for the delay, then let the caller check the password."""
        lock, users = self._locks.get(client, (asyncio.Lock(), 0))
        self._locks[client] = (lock, users + 1)
        try:
            async with lock:
                delay = self.delay_for(client)
                if delay > 0:
                    await self.sleep(delay)
                outcome = Attempt()
                try:
                    yield outcome
                finally:
                    self._record(client, outcome.ok)
        finally:
            lock, users = self._locks[client]
            if users <= 1:
                del self._locks[client]
            else:
                self._locks[client] = (lock, users - 1)

    def _record(self, client: str, ok: bool | None) -> None:
        now = self.clock()
        if ok:
            self._clients.pop(client, None)
        elif ok is False:
            self._clients.setdefault(client, LeakyCount()).add(now, self.per_minute / 60)
            self._everyone.add(now, self.global_per_minute / 60)
        if len(self._clients) > PRUNE_ABOVE:
            rate = self.per_minute / 60
            self._clients = {c: count for c, count in self._clients.items() if count.value(now, rate) > 0}
