"""A local job trained by two gloo ranks through the worker: a `kill -9` of one rank ends it as failed, in words,
without waiting on the dead rank."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.jobs.launch import JobRequest, create_job
from app.providers.local import LocalProvider
from app.providers.local_ranks import TrainerGroup
from app.tables import Job, JobEvent, JobStatus
from app.tables.db import make_engine
from app.worker.loop import Worker
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401

pytestmark = pytest.mark.slow


class KillsRankOne(LocalProvider):
    """The local provider on two CPU ranks, which kill -9s rank 1 once the first step is reported."""

    def __init__(self, settings: Any):
        super().__init__(settings, device="cpu", processes=2)
        self.group: TrainerGroup | None = None
        self.killed_at: float | None = None

    def _relay(self, ctx: Any, group: TrainerGroup, out: Any) -> None:
        self.group = group
        return super()._relay(ctx, group, out)

    def _handle(self, ctx: Any, raw: bytes, state: dict[str, Any]) -> None:
        super()._handle(ctx, raw, state)
        item = json.loads(raw) if raw.startswith(b"{") else {}
        if item.get("type") == "metrics" and self.killed_at is None and self.group is not None:
            self.killed_at = time.monotonic()
            os.kill(self.group.pids()[1], signal.SIGKILL)


class KillingWorker(Worker):
    """A worker whose local provider is KillsRankOne."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.local = KillsRankOne(self.settings)

    def provider(self, name: str) -> LocalProvider:
        return self.local


def test_a_kill_9_of_one_rank_fails_the_job_in_words_and_stops_the_other(settings):
    engine = make_engine(settings)
    with Session(engine, expire_on_commit=False) as session:
        dataset = make_dataset(session, n_train=10)
        job = create_job(
            session,
            settings,
            JobRequest(dataset_id=dataset.id, model=TINY, seed=3, hyperparameters={"n_epochs": 5, "batch_size": 2}),
        )
    worker = KillingWorker(settings, engine, providers=["local"], gpu=False)
    assert worker.step()
    ended = time.monotonic()
    local = worker.local
    assert local.killed_at is not None and local.group is not None
    assert ended - local.killed_at < 15  # no hang on the dead rank (the grace is 5 s, then SIGKILL)
    assert all(process.returncode is not None for process in local.group.processes)  # nothing left running
    with Session(engine) as session:
        done = session.get_one(Job, job.id)
        messages = [
            e.message
            for e in session.exec(select(JobEvent).where(JobEvent.job_id == job.id).order_by(col(JobEvent.seq)))
        ]
    assert done.status == JobStatus.failed
    assert done.error["code"] == "training_process_lost"
    assert done.error["message"].startswith("Training process 2 of 2 (rank 1) was killed (SIGKILL).")
    assert "Training data-parallel on the CPU: 2 processes (gloo)." in messages
    engine.dispose()
