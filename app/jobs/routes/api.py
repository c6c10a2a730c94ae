"""/api/jobs and /api/models: JSON for scripts (bearer key). Thin: parse, call one service, shape."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.jobs import jobs
from app.jobs.example_losses import MAX_LIMIT, TOP, job_example_losses
from app.jobs.model_catalog import list_models
from app.jobs.promote import promote_checkpoint
from app.jobs.shapes import checkpoint_dict, event_dict, job_dict
from app.web.api_types import DbIdField, DbIdQuery, SeqQuery
from app.web.rendering import SessionDep

router = APIRouter(prefix="/api", tags=["jobs"])


class JobCreate(BaseModel):
    """A launch request (see app.jobs.jobs.JobRequest)."""

    dataset_id: DbIdField | None = None
    training_snapshot: str | None = None
    validation_dataset_id: DbIdField | None = None
    use_validation_split: bool = True
    provider: str = "local"
    model: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    method: dict[str, Any] | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    accept_warnings: bool = False
    eval_id: str | None = Field(
        None, description="An eval (`eval_…`) to run on each checkpoint as it is written (Tuneboard's own field)."
    )


def _metadata(request: Request) -> dict[str, str] | None:
    found = {k[9:-1]: v for k, v in request.query_params.items() if k.startswith("metadata[") and k.endswith("]")}
    return found or None


@router.post("/jobs", status_code=201)
def create(body: JobCreate, request: Request, session: SessionDep):
    """Launch a job from a dataset (or a snapshot)."""
    job = jobs.create_job(
        session, request.app.state.settings, jobs.JobRequest(**body.model_dump()), request.app.state.report_cache
    )
    return job_dict(job)


@router.get("/jobs")
def list_(
    request: Request,
    session: SessionDep,
    status: str | None = None,
    provider: str | None = None,
    dataset_id: DbIdQuery = None,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
):
    """Jobs newest first; `after` a job id; `metadata[key]=value` filters."""
    rows, more = jobs.list_jobs(
        session,
        status=status,
        provider=provider,
        dataset_id=dataset_id,
        after=after,
        limit=limit,
        metadata=_metadata(request),
    )
    return {"object": "list", "data": [job_dict(j) for j in rows], "has_more": more}


@router.post("/jobs/import-openai")
def import_openai(request: Request, session: SessionDep):
    """Add the OpenAI account's jobs that Tuneboard does not know yet."""
    return {"imported": jobs.import_openai_jobs(session, request.app.state.settings)}


@router.get("/jobs/{job_id}")
def get(job_id: str, session: SessionDep):
    """One job."""
    return job_dict(jobs.get_job(session, job_id))


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: str, session: SessionDep):
    """Cancel a job (a running one stops within seconds; OpenAI's when OpenAI confirms); 403 maintenance_disabled
    while maintenance is off."""
    return job_dict(jobs.cancel_job(session, job_id))


@router.post("/jobs/{job_id}/rerun", status_code=201)
def rerun(job_id: str, request: Request, session: SessionDep, provider: str | None = None):
    """Run a job again on the same snapshots, optionally on another provider."""
    return job_dict(jobs.rerun_job(session, request.app.state.settings, job_id, provider=provider))


@router.get("/jobs/{job_id}/events")
def events(
    job_id: str, session: SessionDep, after_seq: SeqQuery = None, limit: int | None = Query(None, ge=1, le=10000)
):
    """Events oldest first, after a seq (how a live view catches up)."""
    rows = jobs.list_events(session, job_id, after_seq=after_seq, limit=limit)
    return {"object": "list", "data": [event_dict(e) for e in rows]}


@router.get("/jobs/{job_id}/checkpoints")
def checkpoints(job_id: str, session: SessionDep):
    """Checkpoints, newest step first."""
    return {"object": "list", "data": [checkpoint_dict(c) for c in jobs.list_checkpoints(session, job_id)]}


@router.post("/jobs/{job_id}/checkpoints/{checkpoint_id}/promote")
def promote(job_id: str, checkpoint_id: str, request: Request, session: SessionDep):
    """Make a checkpoint the job's tuned model (local jobs): the model keeps its id and answers with the
    checkpoint's adapter; the adapter the job ended with stays available as its final checkpoint."""
    model = promote_checkpoint(session, request.app.state.settings, job_id, checkpoint_id)
    return {"id": model.id, "object": "model", "job_id": job_id, "checkpoint_id": checkpoint_id}


@router.get("/models")
def models(request: Request, session: SessionDep):
    """Base models, tuned models and checkpoints."""
    return {"object": "list", "data": [asdict(m) for m in list_models(session, request.app.state.settings)]}


@router.delete("/models/{model_id:path}")
def delete_model(model_id: str, request: Request, session: SessionDep):
    """Delete a tuned model (its adapter, or the model at OpenAI); 403 maintenance_disabled while maintenance is
    off."""
    deleted = jobs.delete_tuned_model(session, request.app.state.settings, model_id, engine=session.get_bind())
    return {"id": deleted, "object": "model", "deleted": True}


@router.get("/jobs/{job_id}/example_losses")
def example_losses(
    job_id: str,
    request: Request,
    session: SessionDep,
    limit: int = Query(TOP, ge=1, le=MAX_LIMIT),
    split: Literal["train", "validation"] | None = None,
):
    """The examples the model could not learn: each example's final loss (mean per trained assistant token, measured
    by the local engine after the last step), highest first, with its example id (`deleted` when it no longer
    exists); and the loss spikes of the training curve with the examples of their batches. `state` is `pending`
    until the job ends, `missing` or `unsupported` when there is nothing to show."""
    return job_example_losses(session, request.app.state.settings, job_id, limit, split).as_dict()
