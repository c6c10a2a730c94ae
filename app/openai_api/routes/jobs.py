"""OpenAI-compatible /v1/fine_tuning/jobs: create, list, retrieve, cancel, events, checkpoints (pause: refused)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.jobs import jobs
from app.openai_api import shapes as openai_shapes
from app.web.rendering import SessionDep

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["v1"])
Limit = Annotated[int, Query(ge=1, le=1000)]


class FineTuningJobCreate(BaseModel):
    """The body of POST /v1/fine_tuning/jobs (OpenAI's fields; `integrations` is accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    training_file: str = Field(min_length=1)
    validation_file: str | None = None
    hyperparameters: dict[str, Any] | None = None
    method: dict[str, Any] | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None


@router.post("")
def create_job(request: Request, session: SessionDep, body: FineTuningJobCreate):
    """Create a fine-tuning job on the local engine from uploaded files."""
    fields = body.model_dump(include=set(FineTuningJobCreate.model_fields), exclude_none=True)
    job = jobs.create_job(
        session,
        request.app.state.settings,
        jobs.JobRequest(provider="local", **fields),
        request.app.state.report_cache,
    )
    return openai_shapes.fine_tuning_job(job)


@router.get("")
def list_jobs(request: Request, session: SessionDep, after: str | None = None, limit: Limit = 20):
    """Jobs newest first, `after` a job id, `metadata[k]=v` filters."""
    metadata = openai_shapes.metadata_filter(request.query_params.multi_items())
    rows, has_more = jobs.list_jobs(session, after=after, limit=limit, metadata=metadata or None)
    return openai_shapes.list_envelope([openai_shapes.fine_tuning_job(j) for j in rows], has_more)


@router.get("/{job_id}")
def retrieve_job(session: SessionDep, job_id: str):
    """One job."""
    return openai_shapes.fine_tuning_job(jobs.get_job(session, job_id))


@router.post("/{job_id}/cancel")
def cancel_job(session: SessionDep, job_id: str):
    """Cancel a job: at once when waiting, within seconds when running (403 maintenance_disabled while
    maintenance is off)."""
    return openai_shapes.fine_tuning_job(jobs.cancel_job(session, job_id))


@router.post("/{job_id}/pause")
def pause_job(session: SessionDep, job_id: str):
    """Refused as OpenAI refuses an unsupported action: the local engine cannot pause."""
    openai_shapes.unsupported_action(jobs.get_job(session, job_id), "paused")


@router.post("/{job_id}/resume")
def resume_job(session: SessionDep, job_id: str):
    """Refused: the local engine cannot pause, so there is nothing to resume."""
    openai_shapes.unsupported_action(jobs.get_job(session, job_id), "resumed")


@router.get("/{job_id}/events")
def list_events(session: SessionDep, job_id: str, after: str | None = None, limit: Limit = 20):
    """A job's events, newest first, `after` an event id."""
    rows, has_more = jobs.events_page(session, job_id, after=after, limit=limit)
    return openai_shapes.list_envelope([openai_shapes.job_event(e) for e in rows], has_more)


@router.get("/{job_id}/checkpoints")
def list_checkpoints(session: SessionDep, job_id: str, after: str | None = None, limit: Limit = 10):
    """A job's checkpoints, newest step first, `after` a checkpoint id."""
    rows, has_more = openai_shapes.page_after(jobs.list_checkpoints(session, job_id), after, limit, lambda c: c.id)
    return openai_shapes.list_envelope([openai_shapes.job_checkpoint(c) for c in rows], has_more)
