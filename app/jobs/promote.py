"""A checkpoint becomes the tuned model: the model keeps its id, its adapter becomes the checkpoint's.

- promote_checkpoint(session, settings, job_id, checkpoint_id) -> TunedModel
  Local jobs only (an OpenAI checkpoint is a model of its own). The adapter the job ended with stays reachable as
  the job's final checkpoint; the job's log records the change.
- promoted_checkpoint_id(session, job) -> str | None: the checkpoint whose adapter the tuned model now uses.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.config import Settings
from app.errors import Invalid, NotFound
from app.jobs.events import add_event, get_job, list_checkpoints
from app.jobs.monitoring import metric_series
from app.providers.base import fine_tuned_model_name
from app.tables import Checkpoint, Job, JobStatus, TunedModel


def _checkpoint(session: Session, job_id: str, checkpoint_id: str) -> Checkpoint:
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.job_id != job_id:
        raise NotFound(
            f"Job {job_id} has no checkpoint {checkpoint_id!r}.", code="checkpoint_not_found", param="checkpoint_id"
        )
    return checkpoint


def _tuned_model(session: Session, job: Job) -> TunedModel:
    if job.provider != "local":
        raise Invalid(
            "Only a local job's checkpoint can become its tuned model; an OpenAI checkpoint is a model of its own: "
            "chat with it by its id.",
            code="checkpoint_not_promotable",
            param="checkpoint_id",
        )
    model = session.get(TunedModel, job.fine_tuned_model) if job.fine_tuned_model else None
    if job.status != JobStatus.succeeded or model is None:
        raise Invalid(
            f"Job {job.id} has no tuned model yet: a checkpoint can replace it once the job has succeeded.",
            code="job_not_succeeded",
            param="job_id",
        )
    if model.deleted_at is not None:
        raise Invalid(f"The tuned model {model.id} was deleted.", code="model_deleted", param="job_id")
    return model


def _keep_final_adapter(session: Session, job: Job, model: TunedModel, checkpoints: list[Checkpoint]) -> None:
    """Make sure the adapter the job ended with stays reachable as a checkpoint before the model moves off it.

    The local engine saves a checkpoint at the last step, the same weights as the final adapter: then nothing is
    needed. Otherwise (an older job, a resumed one) the final adapter itself is recorded as the last checkpoint."""
    if not model.path or any(c.path == model.path for c in checkpoints):
        return
    points = metric_series(session, job.id)
    last = points[-1] if points else {}
    final_step = max(
        [int(last.get("total_steps") or last.get("step") or 0)] + [c.step_number for c in checkpoints],
    )
    if any(c.step_number == final_step for c in checkpoints):
        return
    metrics = {k: v for k, v in last.items() if k not in ("seq", "total_steps")}
    session.add(
        Checkpoint(
            job_id=job.id,
            step_number=final_step,
            fine_tuned_model_checkpoint=fine_tuned_model_name(job.model, job.suffix, job.id, final_step),
            metrics=metrics,
            path=model.path,
        )
    )


def promote_checkpoint(session: Session, settings: Settings, job_id: str, checkpoint_id: str) -> TunedModel:
    """Make a checkpoint the job's tuned model: chat, /v1 and evals by the model's id then use its adapter."""
    job = get_job(session, job_id)
    checkpoint = _checkpoint(session, job_id, checkpoint_id)
    model = _tuned_model(session, job)
    if not checkpoint.path or not (settings.data_dir / checkpoint.path).is_dir():
        raise Invalid(
            f"The checkpoint at step {checkpoint.step_number} has no adapter files left to use.",
            code="checkpoint_missing",
            param="checkpoint_id",
        )
    if model.path == checkpoint.path:
        return model  # already the tuned model: a second click changes nothing
    _keep_final_adapter(session, job, model, list_checkpoints(session, job_id))
    previous = model.path
    model.path = checkpoint.path
    session.add(model)
    add_event(
        session,
        job_id,
        f"The checkpoint at step {checkpoint.step_number} is now the tuned model {model.id}.",
        type="model_promoted",
        data={
            "model": model.id,
            "checkpoint_id": checkpoint.id,
            "checkpoint": checkpoint.fine_tuned_model_checkpoint,
            "step": checkpoint.step_number,
            "previous_path": previous,
        },
        commit=False,
    )
    session.commit()
    session.refresh(model)
    return model


def promoted_checkpoint_id(session: Session, job: Job) -> str | None:
    """The checkpoint whose adapter the job's tuned model uses now (None: the adapter the job ended with)."""
    model = session.get(TunedModel, job.fine_tuned_model) if job.fine_tuned_model else None
    if model is None or not model.path or job.provider != "local":
        return None
    rows = session.exec(
        select(Checkpoint.id)
        .where(col(Checkpoint.job_id) == job.id, col(Checkpoint.path) == model.path)
        .order_by(col(Checkpoint.step_number))
    ).all()
    return rows[0] if rows else None
