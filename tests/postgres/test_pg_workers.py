"""Several worker processes share one PostgreSQL queue: every job runs exactly once, on a worker that serves it."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import Session, select

from app.jobs import jobs
from app.tables import Job, JobEvent, JobStatus
from tests.support import processes
from tests.support.builders import make_dataset
from tests.support.processes import stop

pytestmark = pytest.mark.slow


def start_worker(settings, *args: str, step_seconds: float = 0.005):
    """A worker process (tests/postgres/worker_main.py) on the test's database and data dir."""
    return processes.start_worker(
        settings, "tests.postgres.worker_main", settings.database_url, *args, step_seconds=step_seconds
    )


def test_four_worker_processes_run_forty_queued_jobs_each_exactly_once(session, settings, engine):
    dataset = make_dataset(session, n_train=10)
    made = [
        jobs.create_job(
            session, settings, jobs.JobRequest(dataset_id=dataset.id, hyperparameters={"n_epochs": 1}, suffix=f"j{i}")
        ).id
        for i in range(40)
    ]
    workers = [start_worker(settings, "--once") for _ in range(4)]
    try:
        for worker in workers:
            assert worker.wait(timeout=150) == 0, worker.log.read_text()
    finally:
        stop(*workers)
    with Session(engine) as s:
        rows = {job.id: job for job in s.exec(select(Job).where(Job.id.in_(made)))}
        started = Counter(
            e.job_id for e in s.exec(select(JobEvent).where(JobEvent.message == "Fine-tuning job started"))
        )
    assert all(rows[j].status == JobStatus.succeeded for j in made), [rows[j].error for j in made]
    assert all(rows[j].attempts == 1 for j in made)
    assert all(started[j] == 1 for j in made)
    for job_id in made:
        # The fake trainer logs "<its pid> <step>" per step: one trainer process, each step once.
        lines = (settings.data_dir / "jobs" / job_id / "steps.log").read_text().split("\n")[:-1]
        assert len({line.split()[0] for line in lines}) == 1
        assert [int(line.split()[1]) for line in lines] == [1, 2, 3, 4]
    assert len({rows[j].worker_id for j in made}) > 1  # the queue was shared, not drained by one worker


def test_a_worker_serving_only_openai_leaves_local_jobs_to_the_training_hosts(session, settings, engine):
    job_id = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id)).id
    openai_only = start_worker(settings, "--once", "--providers", "openai")
    try:
        assert openai_only.wait(timeout=60) == 0, openai_only.log.read_text()
    finally:
        stop(openai_only)
    with Session(engine) as s:
        assert s.get(Job, job_id).status == JobStatus.queued
    gpu_host = start_worker(settings, "--once")
    try:
        assert gpu_host.wait(timeout=60) == 0, gpu_host.log.read_text()
    finally:
        stop(gpu_host)
    with Session(engine) as s:
        assert s.get(Job, job_id).status == JobStatus.succeeded
