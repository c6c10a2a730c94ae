"""OpenAI answering 429 and 500 many times in a row: the worker backs off, and the job goes on once OpenAI recovers.

The stand-in (tests/support/fake_openai.py) runs on a real uvicorn and the real SDK talks to it. Pauses are
configured in hundredths of a second so a long outage takes well under a second.
"""

from __future__ import annotations

import re
import threading

import pytest
from sqlmodel import Session, select

from app.jobs import jobs
from app.tables import Job, JobEvent, JobStatus
from app.worker.loop import Worker
from tests.conftest import LiveServer, free_port
from tests.support.builders import make_dataset
from tests.support.fake_openai import KEY, FakeOpenAIState, error, make_app
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401
from tests.support.waiting import wait_for

MODEL = "gpt-4o-mini-2024-07-18"
RETRY_SECONDS = 0.01


class Outage:
    """Failures (429 and 500 in turn) aimed at requests whose path ends so; the stand-in's own switch hits
    whatever request comes next, which makes where a poll loop meets the outage a matter of timing."""

    def __init__(self):
        self.path_suffix = ""
        self.remaining = 0


@pytest.fixture(scope="module")
def fake_server():
    state = FakeOpenAIState()
    outage = Outage()
    app = make_app(state)

    @app.middleware("http")
    async def aimed_failures(request, call_next):
        if outage.remaining and request.url.path.endswith(outage.path_suffix):
            outage.remaining -= 1
            if outage.remaining % 2:
                return error(
                    429, "Rate limit reached for requests", code="rate_limit_exceeded", headers={"retry-after-ms": "5"}
                )
            return error(500, "The server had an error while processing your request.", headers={"retry-after-ms": "5"})
        return await call_next(request)

    with LiveServer(app, free_port()) as server:
        server.state, server.outage = state, outage
        yield server


@pytest.fixture
def fake(fake_server):
    """The stand-in with its state and aimed outage reset for each test."""
    fake_server.state.__dict__.update(FakeOpenAIState().__dict__)
    fake_server.outage.__dict__.update(Outage().__dict__)
    return fake_server


def worker_for(settings, engine, fake) -> Worker:
    """A worker serving OpenAI jobs through the stand-in, with the SDK's own retries at one per call."""
    options = {
        "api_key": KEY,
        "base_url": fake.url + "/v1",
        "poll_seconds": 0.01,
        "retry_seconds": RETRY_SECONDS,
        "max_retries": 1,
    }
    return Worker(settings, engine, providers=["openai"], provider_options={"openai": options})


def launch(session, settings) -> str:
    dataset = make_dataset(session)
    return jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id, provider="openai", model=MODEL)).id


def finished_job(engine, job_id) -> tuple[Job, list[JobEvent]]:
    with Session(engine, expire_on_commit=False) as s:
        events = list(s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))
        return s.get(Job, job_id), events


def run_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.step, daemon=True)
    thread.start()
    return thread


def test_ten_failures_in_a_row_while_starting_are_retried_with_growing_pauses_and_the_job_succeeds(
    session, settings, engine, fake
):
    job_id = launch(session, settings)
    fake.state.fail_times(429, 4)
    fake.state.fail_times(500, 6)
    assert worker_for(settings, engine, fake).step()
    job, events = finished_job(engine, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert fake.state.failures == []  # every failure was really served
    pauses = [
        float(m.group(1))
        for e in events
        if e.level == "warn" and (m := re.search(r"Trying again in ([0-9.]+) s", e.message))
    ]
    # Each SDK call absorbs one failure by itself; the provider's own retries then double their pause.
    assert len(pauses) == 5
    assert pauses == [RETRY_SECONDS * 2**i for i in range(5)]
    warnings = " ".join(e.message for e in events if e.level == "warn")
    assert "rate limiting" in warnings and "could not be reached or failed" in warnings
    assert [e.message for e in events].count("The job has successfully completed") == 1


def test_a_long_outage_while_the_job_runs_is_ridden_out_and_the_job_succeeds(session, settings, engine, fake):
    job_id = launch(session, settings)
    fake.state.hold_running = True
    worker = worker_for(settings, engine, fake)
    thread = run_in_thread(worker)
    try:
        wait_for(
            lambda: any(j["status"] == "running" for j in fake.state.jobs.values()), 20, "the job to run at OpenAI"
        )
        # From the next poll on, every request fails: the job's retrieve is the only call a failed poll makes.
        remote_id = next(iter(fake.state.jobs))
        fake.outage.path_suffix, fake.outage.remaining = f"/fine_tuning/jobs/{remote_id}", 40
        wait_for(lambda: fake.outage.remaining == 0 or not thread.is_alive(), 20, "the outage to be over")
        with Session(engine) as s:
            assert s.get(Job, job_id).status == JobStatus.running  # forty failures later, still running
        fake.state.hold_running = False
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        worker.shutdown.set()
        thread.join(timeout=10)
    job, events = finished_job(engine, job_id)
    assert job.status == JobStatus.succeeded, job.error
    retries = [e for e in events if e.level == "warn" and "Retrying shortly" in e.message]
    assert len(retries) >= 40 // 2  # one warning per failed call (each call absorbs one failure itself)
    messages = [e.message for e in events]
    # Polling again after the outage neither loses nor repeats the provider's events.
    remote = [e["message"] for e in next(iter(fake.state.events.values()))]
    assert [m for m in messages if m in remote] == remote


def test_an_outage_that_starts_while_checkpoints_are_listed_does_not_fail_the_job(session, settings, engine, fake):
    job_id = launch(session, settings)
    fake.state.hold_running = True
    worker = worker_for(settings, engine, fake)
    thread = run_in_thread(worker)
    try:
        wait_for(
            lambda: any(j["status"] == "running" for j in fake.state.jobs.values()), 20, "the job to run at OpenAI"
        )
        fake.outage.path_suffix, fake.outage.remaining = "/checkpoints", 6
        wait_for(lambda: fake.outage.remaining == 0 or not thread.is_alive(), 20, "the outage to be served")
        fake.state.hold_running = False
        thread.join(timeout=20)
    finally:
        worker.shutdown.set()
        thread.join(timeout=10)
    job, _ = finished_job(engine, job_id)
    assert job.status == JobStatus.succeeded, job.error
