"""kill -9 of a `tuneboard worker`, and of a whole server with its embedded worker, in the middle of training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app.jobs.launch import JobRequest, create_job
from app.tables import Job, JobEvent, JobStatus, TunedModel
from app.tables.db import make_engine
from tests.conftest import API_KEY, free_port
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER = 3.0  # seconds without a heartbeat before another worker takes the job over


def _env(settings, tiny_model) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNEBOARD_", "OPENAI_"))}
    env.update(
        TUNEBOARD_DATA_DIR=str(settings.data_dir),
        TUNEBOARD_API_KEY=API_KEY,
        TUNEBOARD_LOCAL_MODELS=json.dumps({TINY: str(tiny_model)}),
        TUNEBOARD_DEFAULT_BASE_MODEL=TINY,
        TUNEBOARD_HEARTBEAT_SECONDS="0.3",
        TUNEBOARD_HEARTBEAT_TIMEOUT_SECONDS=str(STALE_AFTER),
        TUNEBOARD_WORKER_POLL_SECONDS="0.1",
        TUNEBOARD_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    return env


def _launch(settings) -> str:
    """A local job long enough to be killed mid-way (many small steps, a checkpoint each epoch)."""
    engine = make_engine(settings)
    with Session(engine, expire_on_commit=False) as session:
        dataset = make_dataset(session, n_train=12)
        job = create_job(
            session,
            settings,
            JobRequest(dataset_id=dataset.id, model=TINY, hyperparameters={"n_epochs": 2, "batch_size": 1}),
        )
    engine.dispose()
    return job.id


def _job(engine, job_id: str) -> Job:
    with Session(engine) as s:
        return s.get(Job, job_id)


def _steps(engine, job_id: str) -> list[int]:
    with Session(engine) as s:
        events = s.exec(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "metrics").order_by(JobEvent.seq)
        ).all()
        return [int((e.data or {}).get("step", -1)) for e in events]


def _start(args: list[str], settings, tiny_model) -> subprocess.Popen:
    # Output goes to a file in the data dir, for a person reading a failure.
    with (settings.data_dir / f"{args[0]}-{os.urandom(3).hex()}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=_env(settings, tiny_model),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _assert_recovered(engine, job_id: str) -> Job:
    """The job ended (never stuck in running), ran one attempt at a time, and says plainly what happened."""
    job = wait_for(
        lambda: (j := _job(engine, job_id)).status.is_terminal and j,
        timeout=180,
        what="the job to end after the restart",
    )
    assert job.status in (JobStatus.succeeded.value, JobStatus.failed.value)
    assert job.attempts == 2
    if job.status == JobStatus.failed.value:
        assert job.error and job.error["message"] and "Traceback" not in job.error["message"]
    else:
        steps = _steps(engine, job_id)
        # Never run twice: the final step is reported once, by the one attempt that finished.
        assert steps.count(max(steps)) == 1
        with Session(engine) as s:
            assert len(s.exec(select(TunedModel).where(TunedModel.job_id == job_id)).all()) == 1
    with Session(engine) as s:
        messages = [e.message for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()]
    assert any("took it over" in m or "Resuming" in m or "interrupted" in m for m in messages)
    return job


def test_kill_9_of_a_worker_mid_training_ends_in_a_resumed_or_plainly_failed_job(settings, tiny_model):
    engine = make_engine(settings)
    job_id = _launch(settings)
    first = _start(["worker", "--gpu"], settings, tiny_model)
    try:
        wait_for(lambda: len(_steps(engine, job_id)) >= 3, timeout=180, what="training to be mid-way")
        os.kill(first.pid, signal.SIGKILL)  # the worker only, as `kill -9 <pid>` does
        first.wait(timeout=10)
        assert _job(engine, job_id).status == JobStatus.running.value
    finally:
        _stop(first)
    second = _start(["worker", "--gpu"], settings, tiny_model)
    try:
        _assert_recovered(engine, job_id)
    finally:
        _stop(second)
        engine.dispose()


def test_kill_9_of_the_server_with_its_embedded_worker_mid_training_ends_cleanly(settings, tiny_model):
    engine = make_engine(settings)
    job_id = _launch(settings)
    port = free_port()
    server = _start(["serve", "--port", str(port)], settings, tiny_model)
    try:
        wait_for(lambda: len(_steps(engine, job_id)) >= 3, timeout=180, what="training to be mid-way")
        os.killpg(server.pid, signal.SIGKILL)  # the whole server: web, embedded worker and its trainer
        server.wait(timeout=10)
        assert _job(engine, job_id).status == JobStatus.running.value
    finally:
        _stop(server)
    restarted = _start(["serve", "--port", str(port)], settings, tiny_model)
    try:
        job = _assert_recovered(engine, job_id)
        page = httpx.get(f"http://127.0.0.1:{port}/jobs/{job_id}", timeout=10)
        assert page.status_code == 200 and job.status in page.text
    finally:
        _stop(restarted)
        engine.dispose()
