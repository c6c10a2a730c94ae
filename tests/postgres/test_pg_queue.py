"""The job claim on PostgreSQL (FOR UPDATE SKIP LOCKED) under many concurrent claimers, and the migrations."""

from __future__ import annotations

import threading
from collections import Counter

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text, update
from sqlmodel import Session

from app.jobs import queue as job_queue
from app.tables import Job
from app.tables.migrate import alembic_config, upgrade


def queue_raw_jobs(engine, n: int, provider: str = "local") -> list[str]:
    """n queued jobs straight in the table (the claim needs nothing else)."""
    with Session(engine, expire_on_commit=False) as session:
        made = [Job(model="tiny-llama", provider=provider) for _ in range(n)]
        session.add_all(made)
        session.commit()
        return [job.id for job in made]


def test_sixteen_concurrent_claimers_take_each_of_sixty_jobs_exactly_once(engine):
    made = queue_raw_jobs(engine, 60)
    taken: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def claimer(i: int) -> None:
        start.wait()
        try:
            while (job_id := job_queue.claim_next(engine, f"w{i}", ["local"])) is not None:
                taken.append((job_id, f"w{i}"))
        except BaseException as exc:  # reported below: a failed claim must not pass silently
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = Counter(job_id for job_id, _ in taken)
    assert sorted(counts) == sorted(made) and set(counts.values()) == {1}
    with Session(engine) as session:
        owners = {job_id: session.get(Job, job_id).worker_id for job_id in made}
    assert owners == dict(taken)  # the row says who claimed it, and it is the one that got it
    assert len(set(owners.values())) > 1


def test_claimers_skip_a_locked_job_instead_of_waiting_for_it(engine):
    first, second = queue_raw_jobs(engine, 2)
    with engine.connect() as holder:
        # Another transaction holds the oldest job's row (a claim in progress elsewhere).
        holder.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first})
        assert job_queue.claim_next(engine, "w", ["local"]) == second
        holder.rollback()
    assert job_queue.claim_next(engine, "w", ["local"]) == first


def test_migrations_reach_the_one_head_on_postgres_and_running_them_again_changes_nothing(settings, engine):
    upgrade(settings)  # a second run (every server start does one) is a no-op
    heads = ScriptDirectory.from_config(alembic_config(settings)).get_heads()
    assert len(heads) == 1
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
        triggers = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
    assert {"job_events_notify", "jobs_status_notify"} <= triggers


def test_a_cpu_worker_takes_local_jobs_at_once_unless_a_live_gpu_worker_serves_them(engine, settings):
    from datetime import timedelta

    from app.tables.common import utcnow
    from app.tables.worker import WorkerRow
    from app.worker.loop import Worker
    from tests.support.worker_main import FAKE_TRAINER

    cpu = Worker(
        settings, engine, providers=["local"], gpu=False, provider_options={"local": {"command": FAKE_TRAINER}}
    )
    job_queue.register_worker(engine, "gpu-host:1", ["local", "openai"], gpu=True)
    (fresh,) = queue_raw_jobs(engine, 1)
    assert job_queue.gpu_worker_serves(engine, "local", settings.heartbeat_timeout_seconds)
    assert not cpu.step()  # a GPU worker is alive: the fresh job is left to it
    with Session(engine) as session:
        session.exec(update(WorkerRow).values(seen_at=utcnow() - timedelta(hours=1)))  # the GPU host died
        session.commit()
    assert not job_queue.gpu_worker_serves(engine, "local", settings.heartbeat_timeout_seconds)
    assert job_queue.claim_next(engine, "cpu", ["local"]) == fresh  # and now nothing holds the job back


def test_a_running_worker_is_listed_as_alive_and_removed_when_it_stops(engine, settings):
    from app.worker.loop import Worker
    from tests.support.waiting import wait_for

    worker = Worker(settings, engine, providers=["openai"], gpu=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        alive = wait_for(lambda: job_queue.live_workers(engine, 30), 10, "the worker to announce itself")
        assert [(w.id, w.providers, w.gpu) for w in alive] == [(worker.worker_id, ["openai"], False)]
    finally:
        worker.shutdown.set()
        thread.join(timeout=15)
    assert job_queue.live_workers(engine, 30) == []
