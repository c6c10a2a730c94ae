"""Two real worker processes against one SQLite file: claim, heartbeat, takeover after a crash, cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.jobs import jobs
from app.settings.maintenance import set_maintenance
from app.tables import Checkpoint, Job, JobEvent, JobStatus, TunedModel
from tests.support import processes
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401
from tests.support.processes import stop
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings, *args: str, step_seconds: float = 0.02):
    return processes.start_worker(settings, "tests.support.worker_main", *args, step_seconds=step_seconds)


def job_now(engine, job_id: str) -> Job:
    with Session(engine) as session:
        return session.get(Job, job_id)


def messages(engine, job_id: str) -> list[str]:
    with Session(engine) as session:
        return [
            e.message for e in session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        ]


def test_two_workers_run_every_queued_job_exactly_once(session, settings, engine):
    dataset = make_dataset(session)
    made = [
        jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id, suffix=f"j{i}")).id for i in range(4)
    ]
    workers = [start_worker(settings, "--once"), start_worker(settings, "--once")]
    try:
        for worker in workers:
            assert worker.wait(timeout=120) == 0, worker.log.read_text()
    finally:
        stop(*workers)
    for job_id in made:
        job = job_now(engine, job_id)
        assert job.status == JobStatus.succeeded, job.error
        assert job.attempts == 1
        assert messages(engine, job_id).count("Fine-tuning job started") == 1
        assert job.fine_tuned_model == f"ft:tiny-llama:{job.suffix}:{job_id}"
        assert job.trained_tokens == 800 and job.hyperparameters["n_epochs"] == 2
        with Session(engine) as s:
            assert s.get(TunedModel, job.fine_tuned_model).path == f"jobs/{job_id}/adapter"
            steps = [c.step_number for c in s.exec(select(Checkpoint).where(Checkpoint.job_id == job_id))]
        assert sorted(steps) == [4, 8]


def test_a_job_whose_worker_died_is_taken_over_and_resumed_from_its_checkpoint(session, settings, engine):
    job_id = jobs.create_job(
        session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id, hyperparameters={"n_epochs": 3})
    ).id
    first = start_worker(settings, "--heartbeat-timeout", "60", step_seconds=0.25)
    try:
        with Session(engine) as s:
            wait_for(
                lambda: s.exec(select(Checkpoint).where(Checkpoint.job_id == job_id)).first(),
                60,
                "the first checkpoint",
            )
        first.send_signal(signal.SIGKILL)  # no goodbye: the heartbeat simply stops
        first.wait(timeout=10)
        assert job_now(engine, job_id).status == JobStatus.running
        second = start_worker(settings, "--heartbeat-timeout", "1.0", step_seconds=0.02)
        try:
            wait_for(lambda: job_now(engine, job_id).status.is_terminal, 60, "the job to end")
        finally:
            stop(second)
    finally:
        stop(first)
    job = job_now(engine, job_id)
    assert job.status == JobStatus.succeeded and job.attempts == 2
    log = messages(engine, job_id)
    assert any("took it over" in m for m in log)
    resumed = next(m for m in log if m.startswith("Resumed at step"))
    assert int(resumed.split()[-1]) >= 4
    assert f"Resuming the job from step {resumed.split()[-1]} (attempt 2)." in log


def test_cancel_stops_a_running_local_job_within_five_seconds(session, settings, engine):
    job_id = jobs.create_job(
        session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id, hyperparameters={"n_epochs": 50})
    ).id
    worker = start_worker(settings, step_seconds=0.1)
    try:
        wait_for(lambda: any(m.startswith("Step 2/") for m in messages(engine, job_id)), 60, "training to run")
        with Session(engine, expire_on_commit=False) as s:
            set_maintenance(s, True)  # cancel needs the maintenance switch on
            jobs.cancel_job(s, job_id)
        asked = time.monotonic()
        wait_for(lambda: job_now(engine, job_id).status == JobStatus.cancelled, 5, "the job to be cancelled")
        assert time.monotonic() - asked < 5
        steps_log = settings.data_dir / "jobs" / job_id / "steps.log"
        lines = steps_log.read_text().splitlines()
        assert len(lines) < 200  # it stopped long before the end
        assert worker.poll() is None  # the worker goes on serving
    finally:
        stop(worker)
    assert worker.returncode == 0


def test_the_tuneboard_worker_command_serves_the_queue_until_it_is_empty(settings):
    env = dict(os.environ, TUNEBOARD_DATA_DIR=str(settings.data_dir), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--providers", "local,openai", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "serving local, openai" in done.stdout
