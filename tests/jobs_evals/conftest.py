"""Fixtures for evals of a job's checkpoints: the tiny model, and a finished local job with three checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from app.tables import Checkpoint, EvalRun, EvalRunStatus, Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from tests.support.jobs_fixtures import TINY, settings, tiny_model

__all__ = ["TINY", "FinishedJob", "add_run", "finished_job", "settings", "tiny_model"]


@dataclass
class FinishedJob:
    """A succeeded local job: its row, its tuned model and its checkpoints (steps 10, 20, 30)."""

    job: Job
    model: TunedModel
    checkpoints: list[Checkpoint]


def metrics_events(session: Session, job_id: str, valid: dict[int, float], train_from: float = 1.2) -> None:
    """A metrics event every 2 steps up to step 30: training loss falls, validation loss as given where given."""
    for step in range(2, 31, 2):
        data = {"step": step, "total_steps": 30, "train_loss": train_from * 0.9 ** (step / 2)}
        if step in valid:
            data["valid_loss"] = valid[step]
        session.add(JobEvent(job_id=job_id, type="metrics", message=f"Step {step}/30", data=data))
    session.commit()


@pytest.fixture
def finished_job(session: Session, settings) -> FinishedJob:
    """A succeeded local job whose validation loss is lowest at step 10 and rises after (its adapters on disk)."""
    job = Job(provider="local", model=TINY, status=JobStatus.succeeded, suffix="demo", started_at=utcnow())
    session.add(job)
    session.commit()
    name = f"ft:{TINY}:demo:{job.id}"
    root = f"jobs/{job.id}"
    for folder in ("adapter", "checkpoints/step-10", "checkpoints/step-20", "checkpoints/step-30"):
        (settings.data_dir / root / folder).mkdir(parents=True)
        (settings.data_dir / root / folder / "adapter_model.safetensors").write_bytes(b"weights")
    model = TunedModel(id=name, job_id=job.id, provider="local", base_model=TINY, path=f"{root}/adapter")
    job.fine_tuned_model = name
    checkpoints = [
        Checkpoint(
            job_id=job.id,
            step_number=step,
            fine_tuned_model_checkpoint=f"{name}:ckpt-step-{step}",
            metrics={"step": step, "train_loss": 1.0 / step, "valid_loss": loss},
            path=f"{root}/checkpoints/step-{step}",
        )
        for step, loss in ((10, 0.5), (20, 0.7), (30, 0.9))
    ]
    session.add_all([job, model, *checkpoints])
    session.commit()
    metrics_events(session, job.id, {6: 0.8, 8: 0.6, 10: 0.5, 14: 0.58, 18: 0.66, 20: 0.7, 24: 0.8, 30: 0.9})
    return FinishedJob(job, model, checkpoints)


def add_run(
    session: Session,
    eval_id: str,
    checkpoint: Checkpoint,
    passed: int,
    failed: int,
    status: EvalRunStatus = EvalRunStatus.completed,
    graders: dict[str, tuple[int, int]] | None = None,
    n_items: int | None = None,
) -> EvalRun:
    """An eval run of a checkpoint with these counts, as the worker's eval lane leaves it."""
    per = [{"testing_criteria": k, "passed": p, "failed": f} for k, (p, f) in (graders or {}).items()]
    run = EvalRun(
        eval_id=eval_id,
        name=f"step {checkpoint.step_number}",
        model=checkpoint.fine_tuned_model_checkpoint,
        data_source={"type": "completions"},
        status=status,
        job_id=checkpoint.job_id,
        checkpoint_id=checkpoint.id,
        n_items=n_items if n_items is not None else passed + failed,
        n_done=passed + failed,
        result_counts={"total": passed + failed, "errored": 0, "passed": passed, "failed": failed},
        per_testing_criteria_results=per,
    )
    session.add(run)
    session.commit()
    return run
