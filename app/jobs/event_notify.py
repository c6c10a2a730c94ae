"""Waiting for a job's new events: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

On PostgreSQL a trigger (migration pg09) sends `NOTIFY tuneboard_events, '<job id>'` when a job event is inserted
or a job's status changes, at commit, whichever process wrote it. Each app keeps one listener (in the
EventNotifier its factory builds): a background thread with its own psycopg connection doing LISTEN, which wakes
the asyncio waiters of that job through `loop.call_soon_threadsafe`. A hundred open event streams thus cost one
connection and one thread, and learn of an event within milliseconds instead of a poll interval.

If the listening connection is lost, waiters fall back to polling until it is back, so nothing is missed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

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
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _run(self) -> None:
        import psycopg  # only a PostgreSQL deployment needs the driver, and only once a stream waits

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


def conninfo(engine: Engine) -> str:
    """The libpq connection string of a PostgreSQL engine (psycopg takes the plain postgresql:// URL)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def has_events_after(engine: Engine, job_id: str, after_seq: int) -> bool:
    """Whether the job has an event with a seq above after_seq."""
    with Session(engine) as session:
        newest = session.exec(select(func.max(JobEvent.seq)).where(col(JobEvent.job_id) == job_id)).one()
    return newest is not None and newest > after_seq


class EventNotifier:
    """How one app (or worker) learns that a job has news: its one listener on PostgreSQL, a short poll on SQLite.

    The app factory builds one per app and stops it at shutdown; the listener starts on first use.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._listener: Listener | None = None
        self._lock = threading.Lock()

    @property
    def uses_notify(self) -> bool:
        """Whether new events are announced (PostgreSQL) rather than found by polling (SQLite)."""
        return self.engine.dialect.name == "postgresql"

    def listener(self) -> Listener:
        """The listener for this database, started on first use."""
        with self._lock:
            if self._listener is None:
                self._listener = Listener(conninfo(self.engine)).start()
            return self._listener

    def stop(self) -> None:
        """Stop the listener, if one was started (the app's shutdown, and tests)."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    async def wait_for_new_events(self, job_id: str, after_seq: int, timeout: float) -> None:
        """Return when the job may have events after `after_seq` (or a new status), or after `timeout` seconds.

        The caller re-reads afterwards; an early return only costs it one read.
        """
        timeout = max(0.0, timeout)
        if not self.uses_notify:
            await asyncio.sleep(min(POLL_SECONDS, timeout))
            return
        listener = self.listener()
        if not listener.ready:
            # First use (connecting takes milliseconds) or the connection is down: poll.
            await anyio.to_thread.run_sync(listener.wait_ready, min(POLL_SECONDS, timeout))
            return
        event = asyncio.Event()
        with listener.watch(job_id, asyncio.get_running_loop(), event):
            # An event committed between the caller's read and watch() was announced to nobody: look once.
            if await anyio.to_thread.run_sync(has_events_after, self.engine, job_id, after_seq):
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
