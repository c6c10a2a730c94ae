"""Waiting for a job's new events: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

On PostgreSQL a trigger (migration pg09) sends `NOTIFY tuneboard_events, '<job id>'` when a job event is inserted
or a job's status changes, at commit, whichever process wrote it. Each web process keeps one listener per
database: a background thread with its own psycopg connection doing LISTEN, which wakes the asyncio waiters of
that job through `loop.call_soon_threadsafe`. A hundred open event streams thus cost one connection and one
thread, and learn of an event within milliseconds instead of a poll interval.

If the listening connection is lost, waiters fall back to polling until it is back, so nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.tables import JobEvent

CHANNEL = "tuneboard_events"
# SQLite has no change notifications: streams re-read every POLL_SECONDS (well under a second per event).
POLL_SECONDS = 0.1
log = logging.getLogger("tuneboard.notify")

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class Listener:
    """One LISTEN connection and its thread; wakes the waiters registered for a job when it is announced."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self._waiters: dict[str, set[_Waiter]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuneboard-listen", daemon=True)

    @property
    def ready(self) -> bool:
        """Whether the connection is up and listening (otherwise waiters poll)."""
        return self._ready.is_set()

    def start(self) -> Listener:
        """Start the listening thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and wait for the thread (it notices within a second)."""
        self._stop.set()
        self._thread.join(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Block until listening, up to timeout seconds; whether it is."""
        return self._ready.wait(timeout)

    def watchers(self, job_id: str) -> int:
        """How many waiters are watching a job right now."""
        with self._lock:
            return len(self._waiters.get(job_id, ()))

    @contextmanager
    def watch(self, job_id: str, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> Iterator[None]:
        """Set `event` (on `loop`) whenever `job_id` is announced, while inside the block."""
        waiter = (loop, event)
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)
        try:
            yield
        finally:
            with self._lock:
                group = self._waiters.get(job_id)
                if group is not None:
                    group.discard(waiter)
                    if not group:
                        del self._waiters[job_id]

    def _wake(self, job_id: str | None) -> None:
        with self._lock:
            if job_id is None:
                waiters = [w for group in self._waiters.values() for w in group]
            else:
                waiters = list(self._waiters.get(job_id, ()))
        for loop, event in waiters:
            # RuntimeError: that loop has closed; its waiter is about to unregister.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    self._wake(None)  # events may have come while nobody listened: everyone re-reads
                    backoff = 0.5
                    while not self._stop.is_set():
                        # The timeout bounds how long stop() waits; notifications arrive as soon as they commit.
                        for note in conn.notifies(timeout=1.0):
                            self._wake(note.payload)
            except Exception as exc:  # the database restarted or went away: poll meanwhile, reconnect later
                log.warning("event listener lost its connection (%s); retrying in %.1f s", exc, backoff)
            finally:
                self._ready.clear()
                self._wake(None)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


# One listener per database per process, made on first use (the per-process resource the design asks for).
_listeners: dict[str, Listener] = {}
_listeners_lock = threading.Lock()


def conninfo(engine: Engine) -> str:
    """The libpq connection string of a PostgreSQL engine (psycopg takes the plain postgresql:// URL)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def listener_for(engine: Engine) -> Listener:
    """This process's listener for the engine's database, started on first use."""
    key = conninfo(engine)
    with _listeners_lock:
        listener = _listeners.get(key)
        if listener is None:
            listener = _listeners[key] = Listener(key).start()
        return listener


def stop_listeners() -> None:
    """Stop every listener of this process (the app's shutdown, and tests)."""
    with _listeners_lock:
        listeners = list(_listeners.values())
        _listeners.clear()
    for listener in listeners:
        listener.stop()


def uses_notify(engine: Engine) -> bool:
    """Whether new events are announced (PostgreSQL) rather than found by polling (SQLite)."""
    return engine.dialect.name == "postgresql"


def has_events_after(engine: Engine, job_id: str, after_seq: int) -> bool:
    """Whether the job has an event with a seq above after_seq."""
    with Session(engine) as session:
        newest = session.exec(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)).one()
    return newest is not None and newest > after_seq


async def wait_for_new_events(engine: Engine, job_id: str, after_seq: int, timeout: float) -> None:
    """Return when the job may have events after `after_seq` (or a new status), or after `timeout` seconds.

    The caller re-reads afterwards; an early return only costs it one read.
    """
    timeout = max(0.0, timeout)
    if not uses_notify(engine):
        await asyncio.sleep(min(POLL_SECONDS, timeout))
        return
    listener = listener_for(engine)
    if not listener.ready:
        # First use in this process (connecting takes milliseconds) or the connection is down: poll.
        await anyio.to_thread.run_sync(listener.wait_ready, min(POLL_SECONDS, timeout))
        return
    event = asyncio.Event()
    with listener.watch(job_id, asyncio.get_running_loop(), event):
        # An event committed between the caller's read and watch() was announced to nobody: look once.
        if await anyio.to_thread.run_sync(has_events_after, engine, job_id, after_seq):
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
