"""The queue's guarantees, in one process: atomic claims, takeover of stale jobs only, the --gpu rule, release."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from app.jobs import jobs
from app.jobs import queue as job_queue
from app.tables import Checkpoint, Job, JobEvent, JobStatus
from app.tables.common import utcnow
from app.worker.loop import Worker
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401
from tests.support.waiting import wait_for
from tests.support.worker_main import FAKE_TRAINER


def queue_jobs(session, settings, n: int) -> list[str]:
    dataset = make_dataset(session)
    return [jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id)).id for _ in range(n)]


def test_racing_claims_take_each_job_exactly_once(session, settings, engine):
    made = queue_jobs(session, settings, 3)
    claimed: list[str | None] = []
    start = threading.Barrier(8)

    def claim(i: int) -> None:
        start.wait()
        claimed.append(job_queue.claim_next(engine, f"w{i}", ["local"]))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [c for c in claimed if c]
    assert sorted(taken) == sorted(made) and claimed.count(None) == 5
    assert job_queue.claim_next(engine, "late", ["local"]) is None


def test_only_a_job_whose_heartbeat_is_stale_is_taken_over(session, settings, engine):
    (job_id,) = queue_jobs(session, settings, 1)
    assert job_queue.claim_next(engine, "first", ["local"]) == job_id
    assert job_queue.take_over_stale(engine, "second", ["local"], timeout_seconds=30) is None
    with Session(engine) as s:
        s.exec(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=60)))
        s.commit()
    assert job_queue.take_over_stale(engine, "second", ["local"], timeout_seconds=30) == job_id
    # The first worker has lost it: its heartbeat and its writes no longer land.
    assert job_queue.heartbeat(engine, job_id, "first") == (False, False)
    assert not job_queue.finish(engine, job_id, "first", JobStatus.succeeded)
    assert job_queue.heartbeat(engine, job_id, "second") == (True, False)


def test_a_worker_without_gpu_leaves_fresh_local_jobs_to_gpu_workers(session, settings, engine):
    (job_id,) = queue_jobs(session, settings, 1)
    assert job_queue.claim_next(engine, "cpu", ["local"], patient=("local",), patience_seconds=30) is None
    with Session(engine) as s:
        s.exec(update(Job).where(Job.id == job_id).values(updated_at=utcnow() - timedelta(seconds=60)))
        s.commit()
    assert job_queue.claim_next(engine, "cpu", ["local"], patient=("local",), patience_seconds=30) == job_id


def test_a_job_interrupted_too_often_fails_with_a_plain_reason(session, settings, engine):
    (job_id,) = queue_jobs(session, settings, 1)
    with Session(engine) as s:
        s.exec(update(Job).where(Job.id == job_id).values(attempts=job_queue.MAX_ATTEMPTS))
        s.commit()
    assert Worker(settings, engine, providers=["local"]).step()
    with Session(engine) as s:
        job = s.get(Job, job_id)
    assert job.status == JobStatus.failed and job.error["code"] == "interrupted"
    assert "interrupted" in job.error["message"]


def test_a_released_job_goes_back_to_the_queue(session, settings, engine):
    (job_id,) = queue_jobs(session, settings, 1)
    job_queue.claim_next(engine, "w", ["local"])
    job_queue.release(engine, job_id, "w")
    with Session(engine) as s:
        job = s.get(Job, job_id)
    assert job.status == JobStatus.queued and job.worker_id is None and job.attempts == 0


def test_a_worker_shutting_down_hands_its_job_back_and_the_next_run_resumes_it(session, settings, engine, monkeypatch):
    monkeypatch.setenv("TB_FAKE_STEP_SECONDS", "0.1")
    job_id = jobs.create_job(
        session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id, hyperparameters={"n_epochs": 3})
    ).id
    options = {"local": {"command": FAKE_TRAINER}}
    worker = Worker(settings, engine, providers=["local"], provider_options=options)
    thread = threading.Thread(target=worker.run)
    thread.start()
    with Session(engine) as s:
        wait_for(lambda: s.exec(select(Checkpoint).where(Checkpoint.job_id == job_id)).first(), 30, "a checkpoint")
    worker.shutdown.set()
    thread.join(timeout=15)
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job.status == JobStatus.queued and job.attempts == 0
    monkeypatch.setenv("TB_FAKE_STEP_SECONDS", "0.01")
    Worker(settings, engine, providers=["local"], provider_options=options).run(once=True)
    with Session(engine) as s:
        assert s.get(Job, job_id).status == JobStatus.succeeded
        log = [e.message for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id))]
    assert any(m.startswith("Resuming the job from step") for m in log)
    assert any(m.startswith("Resumed at step") for m in log)
