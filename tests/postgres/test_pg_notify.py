"""Live streams on PostgreSQL learn of new events through LISTEN/NOTIFY instead of polling."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import update
from sqlmodel import Session

from app.jobs.event_notify import POLL_SECONDS, EventNotifier
from app.jobs.events import record_event
from app.tables import Job, JobStatus
from tests.support.waiting import wait_for


@pytest.fixture
def notifier(engine):
    """The test database's notifier, as an app builds it; its LISTEN connection ends with the test."""
    made = EventNotifier(engine)
    yield made
    made.stop()


def make_job(engine) -> str:
    with Session(engine, expire_on_commit=False) as session:
        job = Job(model="tiny-llama")
        session.add(job)
        session.commit()
        return job.id


def wait_timed(notifier: EventNotifier, job_id: str, timeout: float, when_watched) -> tuple[float, float]:
    """Run wait_for_new_events once the listener is up; `when_watched()` runs in a thread once it waits.

    Returns (seconds the wait took, seconds between when_watched's commit and the waiter waking).
    """
    notifier.listener().wait_ready(10)
    done_at: list[float] = []

    def act() -> None:
        listener = notifier.listener()
        wait_for(lambda: listener.watchers(job_id), 10, "the waiter to start watching")
        when_watched()
        done_at.append(time.monotonic())

    async def main() -> float:
        thread = threading.Thread(target=act)
        thread.start()
        started = time.monotonic()
        await notifier.wait_for_new_events(job_id, after_seq=0, timeout=timeout)
        woke = time.monotonic()
        await asyncio.to_thread(thread.join)
        return started, woke

    started, woke = asyncio.run(main())
    return woke - started, woke - done_at[0] if done_at else float("nan")


def test_an_event_recorded_in_another_connection_wakes_the_waiter_within_a_second(engine, notifier):
    job_id = make_job(engine)
    took, latency = wait_timed(notifier, job_id, 10, lambda: record_event(engine, job_id, "Step 1/8"))
    assert took < 5 and latency < 1.0


def test_a_status_change_without_an_event_also_wakes_the_waiter(engine, notifier):
    job_id = make_job(engine)

    def start_running() -> None:
        with Session(engine) as session:
            session.exec(update(Job).where(Job.id == job_id).values(status=JobStatus.running))
            session.commit()

    took, latency = wait_timed(notifier, job_id, 10, start_running)
    assert took < 5 and latency < 1.0


def test_another_jobs_event_does_not_wake_the_waiter(engine, notifier):
    watched, other = make_job(engine), make_job(engine)
    took, _ = wait_timed(notifier, watched, 0.8, lambda: record_event(engine, other, "elsewhere"))
    assert took >= 0.75  # it slept through the other job's event until its own timeout


def test_an_event_committed_before_the_wait_began_returns_at_once(engine, notifier):
    job_id = make_job(engine)
    record_event(engine, job_id, "already there")
    notifier.listener().wait_ready(10)
    started = time.monotonic()
    asyncio.run(notifier.wait_for_new_events(job_id, after_seq=0, timeout=10))
    assert time.monotonic() - started < 1.0


def test_a_listener_that_lost_its_connection_reconnects_and_waiters_poll_meanwhile(engine, notifier, pg_cluster):
    import psycopg

    job_id = make_job(engine)
    listener = notifier.listener()
    assert listener.wait_ready(10)
    database = engine.url.database
    with psycopg.connect(
        f"host=127.0.0.1 port={pg_cluster.port} user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'",
            (database,),
        )
    wait_for(lambda: not listener.ready, 10, "the listener to notice")
    started = time.monotonic()
    asyncio.run(notifier.wait_for_new_events(job_id, after_seq=0, timeout=10))
    assert time.monotonic() - started < 1.0  # a short poll, not the whole timeout
    assert listener.wait_ready(10)
    _took, latency = wait_timed(notifier, job_id, 10, lambda: record_event(engine, job_id, "after the reconnect"))
    assert latency < 1.0


def test_on_sqlite_the_waiter_falls_back_to_one_short_poll(tmp_path):
    from app.tables.db import make_engine
    from app.tables.migrate import upgrade
    from tests.conftest import make_settings

    sqlite = make_settings(tmp_path / "sqlite")
    upgrade(sqlite)
    lite = make_engine(sqlite)
    polling = EventNotifier(lite)
    try:
        started = time.monotonic()
        asyncio.run(polling.wait_for_new_events(make_job(lite), after_seq=0, timeout=10))
        took = time.monotonic() - started
    finally:
        lite.dispose()
    assert POLL_SECONDS * 0.9 <= took < 2
    assert not polling.uses_notify
