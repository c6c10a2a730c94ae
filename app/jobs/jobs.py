"""Fine-tuning jobs: the one service the dashboard, /api/jobs and /v1/fine_tuning use alike.

Public seam (see docs/architecture.md):
- create_job(session, settings, JobRequest) -> Job            (app/jobs/launch.py)
- get_job(session, job_id) -> Job                              NotFound("job_not_found") (app/jobs/events.py)
- list_jobs(session, *, status, provider, dataset_id, after, limit, metadata) -> (jobs newest first, has_more)
- cancel_job(session, job_id) -> Job                           queued: cancelled now; running: flagged, the
                                                               worker ends it within 5 s (local) or asks the provider;
                                                               Forbidden("maintenance_disabled") while it is off
- rerun_job(session, settings, job_id) -> Job                  same snapshots and settings, queued anew
- list_events / events_page / list_checkpoints / record_event  (app/jobs/events.py)
- delete_tuned_model(session, settings, model_id) -> str      Forbidden("maintenance_disabled") while maintenance is off
- import_openai_jobs(session, settings) -> int                 (app/jobs/openai_import.py)
- promote_checkpoint(session, settings, job_id, checkpoint_id)  a checkpoint becomes the tuned model (promote.py)
"""

from __future__ import annotations

import shutil
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.config import Settings
from app.errors import Invalid, NotFound
from app.jobs.events import add_event, events_page, get_job, list_checkpoints, list_events, record_event
from app.jobs.export import forget_exports
from app.jobs.launch import JobRequest, create_job
from app.jobs.openai_import import import_openai_jobs
from app.providers.registry import get_provider, provider_class
from app.settings.maintenance import require_maintenance
from app.tables import Checkpoint, Job, JobStatus, TunedModel
from app.tables.common import utcnow

__all__ = [
    "JobRequest",
    "cancel_job",
    "create_job",
    "delete_tuned_model",
    "events_page",
    "get_job",
    "import_openai_jobs",
    "list_checkpoints",
    "list_events",
    "list_jobs",
    "record_event",
    "rerun_job",
]

_WAITING = (JobStatus.validating_files, JobStatus.queued)


def _status_filter(value: str) -> JobStatus:
    """A status filter as JobStatus; Invalid names the parameter when there is no such status."""
    try:
        return JobStatus(value)
    except ValueError:
        raise Invalid(f"Unknown status {value!r}.", param="status") from None


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    provider: str | None = None,
    dataset_id: int | None = None,
    after: str | None = None,
    limit: int = 20,
    metadata: dict[str, str] | None = None,
) -> tuple[list[Job], bool]:
    """Jobs newest first, filtered; `after` is a job id (the page continues with older jobs), as OpenAI's list."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000.", param="limit")
    query = select(Job)
    if status:
        query = query.where(col(Job.status) == _status_filter(status))
    if provider:
        query = query.where(col(Job.provider) == provider)
    if dataset_id is not None:
        query = query.where(col(Job.dataset_id) == dataset_id)
    for key, value in (metadata or {}).items():
        query = query.where(col(Job.metadata_)[key].as_string() == value)
    if after:
        cursor = get_job(session, after)
        older = (col(Job.created_at) < cursor.created_at) | (
            (col(Job.created_at) == cursor.created_at) & (col(Job.id) < cursor.id)
        )
        query = query.where(older)
    query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    rows = list(session.exec(query))
    return rows[:limit], len(rows) > limit


# How an ended job reads in a sentence: "has already succeeded", but "has already been cancelled".
ENDED_AS = {JobStatus.succeeded: "succeeded", JobStatus.failed: "failed", JobStatus.cancelled: "been cancelled"}


def cancel_job(session: Session, job_id: str) -> Job:
    """Cancel a job: a waiting one at once; a running one is flagged and its worker stops it (or tells OpenAI).
    Refused while the maintenance switch is off."""
    job = get_job(session, job_id)
    require_maintenance(session, f"Cancelling job {job_id}")
    if job.status.is_terminal:
        # 400, not 409: OpenAI answers a cancel of an ended job with a 400 invalid_request_error.
        raise Invalid(
            f"Job {job_id} has already {ENDED_AS[job.status]}; it cannot be cancelled.",
            code="job_not_cancellable",
            param="job_id",
        )
    now = utcnow()
    # Conditional update: a worker may claim the job between our read and this write.
    taken = session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(_WAITING))
        .values(status=JobStatus.cancelled, finished_at=now, updated_at=now, cancel_requested=True)
    )
    if taken.rowcount:
        add_event(session, job_id, "Job cancelled before it started.", commit=False)
    else:
        session.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.status) == JobStatus.running)
            .values(cancel_requested=True, updated_at=now)
        )
        add_event(session, job_id, "Cancellation requested.", commit=False)
    session.commit()
    session.refresh(job)
    return job


def rerun_job(session: Session, settings: Settings, job_id: str, provider: str | None = None) -> Job:
    """A new queued job on the same snapshots and settings as an earlier one, optionally on another provider
    (e.g. "run this job on the local engine" after OpenAI refused it: the provider's default model is used)."""
    old = get_job(session, job_id)
    method = old.method or {}
    kind = method.get("type", "supervised")
    requested = dict((method.get(kind) or {}).get("hyperparameters") or old.hyperparameters or {})
    switch_to = provider if provider is not None and provider != old.provider else None
    if switch_to is not None:
        target = provider_class(switch_to)
        allowed = (*target.hyperparameter_names, *(target.dpo_hyperparameter_names if kind == "dpo" else ()))
        requested = {k: v for k, v in requested.items() if k in allowed}
    request = JobRequest(
        training_snapshot=old.training_snapshot_id,
        validation_snapshot=old.validation_snapshot_id,
        use_validation_split=False,
        provider=provider or old.provider,
        model=None if switch_to is not None else old.model,
        hyperparameters=requested,
        method={"type": kind} if kind != "supervised" else None,  # a DPO job is re-run as DPO
        suffix=old.suffix,
        seed=old.seed,
        metadata=old.metadata_,
        eval_id=old.eval_id,  # the same checks of each checkpoint (the column empties when the eval is deleted)
    )
    if not request.training_snapshot:
        raise Invalid(f"Job {job_id} has no training snapshot to run again.", param="job_id")
    job = create_job(session, settings, request)
    job.dataset_id, job.validation_dataset_id = old.dataset_id, old.validation_dataset_id
    session.add(job)
    session.commit()
    return job


def get_tuned_model(session: Session, model_id: str) -> TunedModel:
    """A tuned model that was not deleted, or NotFound."""
    model = session.get(TunedModel, model_id)
    if model is None or model.deleted_at is not None:
        raise NotFound(f"The model '{model_id}' does not exist", code="model_not_found", param="model")
    return model


def delete_tuned_model(session: Session, settings: Settings, model_id: str, **provider_options: Any) -> str:
    """Delete a tuned model: its adapter files (local) or the provider's model (OpenAI). Returns its id.
    Refused while the maintenance switch is off."""
    model = get_tuned_model(session, model_id)
    require_maintenance(session, f"Deleting model {model_id}")
    if model.provider == "local":
        # A promoted checkpoint's adapter is the model's and the checkpoint's: checkpoints outlive their model.
        shared = session.exec(select(Checkpoint.id).where(col(Checkpoint.path) == model.path).limit(1)).first()
        if model.path and shared is None:
            shutil.rmtree(settings.data_dir / model.path, ignore_errors=True)
        forget_exports(settings, model_id)
    else:
        with get_provider(model.provider, settings, **provider_options) as provider:
            provider.delete_model(model_id)
    model.deleted_at = utcnow()
    session.add(model)
    if model.job_id and session.get(Job, model.job_id) is not None:
        # The job page reads this event to say when its model went; checkpoints are separate models and stay usable.
        add_event(
            session,
            model.job_id,
            f"Tuned model {model_id} was deleted. Its checkpoints stay available.",
            type="model_deleted",
            data={"model": model_id, "deleted_at": model.deleted_at.isoformat()},
            commit=False,
        )
    session.commit()
    return model_id
