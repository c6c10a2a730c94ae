"""A local job stopped after a checkpoint and resumed reports every step exactly once (events and result CSVs)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.jobs.launch import JobRequest, create_job
from app.jobs.monitoring import iter_results_csv
from app.providers.local import LocalProvider
from app.tables import Job, JobEvent, JobStatus
from app.tables.db import make_engine
from app.worker.loop import Worker
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401

pytestmark = pytest.mark.slow


class StopsPastTheFirstCheckpoint(LocalProvider):
    """The local provider, but it stops its worker as soon as a step after the first checkpoint is reported:
    what a server restart does to a job caught between two checkpoints."""

    def __init__(self, settings: Any, stop: Any):
        super().__init__(settings, device="cpu")
        self.stop = stop
        self.checkpoint_step: int | None = None

    def _handle(self, ctx: Any, raw: bytes, state: dict[str, Any]) -> None:
        super()._handle(ctx, raw, state)
        item = _json(raw)
        if item.get("kind") == "checkpoint" and self.checkpoint_step is None:
            self.checkpoint_step = int(item["step"])
        step = (item.get("data") or {}).get("step") if item.get("type") == "metrics" else None
        if self.checkpoint_step is not None and step is not None and step > self.checkpoint_step:
            self.stop.set()


class StoppingWorker(Worker):
    """A worker whose local provider stops it past the first checkpoint."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.local = StopsPastTheFirstCheckpoint(self.settings, self.shutdown)

    def provider(self, name: str) -> LocalProvider:
        return self.local


def _json(raw: bytes) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}


def _metrics_steps(session: Session, job_id: str) -> list[int]:
    rows = session.exec(
        select(JobEvent).where(JobEvent.job_id == job_id, col(JobEvent.type) == "metrics").order_by(col(JobEvent.seq))
    ).all()
    return [int(e.data["step"]) for e in rows]


def _step_messages(session: Session, job_id: str) -> list[int]:
    rows = session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.seq))).all()
    return [int(e.message.split()[1].split("/")[0]) for e in rows if e.message.startswith("Step ") and ":" in e.message]


def _csv_steps(text: str) -> list[int]:
    rows = list(csv.reader(io.StringIO(text)))
    return [int(r[0]) for r in rows[1:]]


def _repeated(steps: list[int]) -> dict[int, int]:
    return {step: n for step, n in Counter(steps).items() if n > 1}


def test_a_job_stopped_after_a_checkpoint_and_resumed_reports_each_step_once(settings):
    engine = make_engine(settings)
    with Session(engine, expire_on_commit=False) as session:
        dataset = make_dataset(session, n_train=10)
        job = create_job(
            session,
            settings,
            JobRequest(dataset_id=dataset.id, model=TINY, seed=3, hyperparameters={"n_epochs": 3, "batch_size": 1}),
        )
    first = StoppingWorker(settings, engine, providers=["local"], gpu=False)
    assert first.step()
    with Session(engine) as session:
        stopped = session.get_one(Job, job.id)
        assert stopped.status == JobStatus.queued  # handed back, to resume from its checkpoint
        reported = _metrics_steps(session, job.id)
    checkpoint = first.local.checkpoint_step
    assert checkpoint is not None and max(reported) > checkpoint  # the repeated steps were reported once already

    assert Worker(settings, engine, providers=["local"], gpu=False).step()
    with Session(engine) as session:
        done = session.get_one(Job, job.id)
        assert done.status == JobStatus.succeeded, done.error
        metrics = _metrics_steps(session, job.id)
        messages = _step_messages(session, job.id)
    total = 3 * 10
    assert _repeated(metrics) == {} and sorted(metrics) == list(range(1, total + 1))
    assert _repeated(messages) == {} and sorted(messages) == list(range(1, total + 1))
    dashboard_csv = _csv_steps("".join(iter_results_csv(engine, job.id)))
    assert _repeated(dashboard_csv) == {} and sorted(dashboard_csv) == list(range(1, total + 1))
    (result_file,) = done.result_files
    engine_csv = _csv_steps((settings.data_dir / result_file).read_text())
    assert engine_csv == list(range(1, total + 1))
    engine.dispose()
