"""Runs of a job's checkpoints on the eval attached to the job: one run per checkpoint, made as it is recorded."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.config import Settings
from app.evals.evals import get_eval
from app.evals.runs import create_run
from app.tables import Checkpoint, EvalRun, Job


def queue_checkpoint_eval(
    session: Session, settings: Settings, job_id: str, *, step: int, checkpoint_id: str | None = None
) -> EvalRun | None:
    """Queue the run of a checkpoint just recorded (by id, or by its step); the run only when it was made now."""
    query = select(Checkpoint).where(col(Checkpoint.job_id) == job_id)
    if checkpoint_id:
        query = query.where(col(Checkpoint.id) == checkpoint_id)
    else:
        query = query.where(col(Checkpoint.step_number) == step)
    checkpoint = session.exec(query.order_by(col(Checkpoint.created_at)).limit(1)).first()
    if checkpoint is None:
        return None
    before = _existing(session, job_id, checkpoint.id)
    if before is not None:
        return None
    return checkpoint_run(session, settings, job_id, checkpoint.id)


def _existing(session: Session, job_id: str, checkpoint_id: str) -> EvalRun | None:
    query = select(EvalRun).where(col(EvalRun.job_id) == job_id, col(EvalRun.checkpoint_id) == checkpoint_id)
    return session.exec(query.limit(1)).first()


def checkpoint_run(session: Session, settings: Settings, job_id: str, checkpoint_id: str) -> EvalRun | None:
    """The run of a checkpoint on its job's eval, created once (later calls return it); None when the job has no
    eval, or the eval has no source of items to reuse."""
    job = session.get(Job, job_id)
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if job is None or job.eval_id is None or checkpoint is None or checkpoint.job_id != job_id:
        return None
    existing = _existing(session, job_id, checkpoint_id)
    if existing is not None:
        return existing
    row = get_eval(session, job.eval_id)
    data_source = None
    if row.dataset_id is None:
        # An eval of uploaded items: the checkpoint answers the items its latest run answered.
        latest = session.exec(
            select(EvalRun).where(col(EvalRun.eval_id) == row.id).order_by(col(EvalRun.created_at).desc()).limit(1)
        ).first()
        if latest is None:
            return None
        data_source = {k: v for k, v in latest.data_source.items() if k != "model"}
    return create_run(
        session,
        settings,
        row.id,
        model=checkpoint.fine_tuned_model_checkpoint,
        data_source=data_source,
        name=f"step {checkpoint.step_number}",
        job_id=job_id,
        checkpoint_id=checkpoint_id,
    )
