"""/api/evals: evals, runs and output items as JSON for scripts (bearer key). Thin: parse, call one service, shape.

The objects are /v1's (OpenAI's shapes); a run adds its progress and pass rates with 95% intervals (`summary`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from app.evals import evals, runs, shapes
from app.web.api_types import DbIdField
from app.web.rendering import SessionDep

router = APIRouter(prefix="/api/evals", tags=["evals"])
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Literal["asc", "desc"]


class EvalCreate(BaseModel):
    """An eval: graders, and items from a dataset's split or described by an item schema (OpenAI's custom config)."""

    name: str | None = None
    testing_criteria: list[dict[str, Any]] = Field(description="Graders, in OpenAI's shapes (see /v1/evals).")
    dataset_id: DbIdField | None = None
    split: Literal["validation", "train", "all"] | None = Field(
        None, description="With dataset_id: the examples to use; by default validation when there is one, else all."
    )
    data_source_config: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class EvalUpdate(BaseModel):
    """A new name and/or metadata."""

    name: str | None = None
    metadata: dict[str, str] | None = None


class RunCreate(BaseModel):
    """A run: the model to evaluate, and optionally OpenAI's completions data source (the eval's dataset if none)."""

    model: str = Field(min_length=1, description="A base model, tuned model, checkpoint or OpenAI model id.")
    data_source: dict[str, Any] | None = None
    name: str | None = None
    metadata: dict[str, str] | None = None


def _run(row: Any, request: Request) -> dict[str, Any]:
    return {
        **shapes.run_object(row, str(request.base_url)),
        **shapes.run_progress(row),
        "summary": runs.run_summary(row),
    }


@router.post("", status_code=201)
def create(request: Request, session: SessionDep, body: EvalCreate):
    """Create an eval from a dataset's split (or an item schema) and graders."""
    row = evals.create_eval(
        session,
        request.app.state.settings,
        name=body.name,
        testing_criteria=body.testing_criteria,
        data_source_config=body.data_source_config,
        dataset_id=body.dataset_id,
        split=body.split,
        metadata=body.metadata,
    )
    return shapes.eval_object(row)


@router.get("")
def list_(session: SessionDep, after: str | None = None, limit: Limit = 20, order: Order = "desc"):
    """Evals newest first (`order=asc` for oldest first); `after` an eval id."""
    rows, has_more = evals.list_evals(session, after=after, limit=limit, order=order)
    return {"object": "list", "data": [shapes.eval_object(r) for r in rows], "has_more": has_more}


@router.get("/{eval_id}")
def get(session: SessionDep, eval_id: str):
    """One eval."""
    return shapes.eval_object(evals.get_eval(session, eval_id))


@router.patch("/{eval_id}")
def update(session: SessionDep, eval_id: str, body: EvalUpdate):
    """Rename an eval or replace its metadata."""
    return shapes.eval_object(evals.update_eval(session, eval_id, name=body.name, metadata=body.metadata))


@router.delete("/{eval_id}", status_code=204)
def delete(request: Request, session: SessionDep, eval_id: str):
    """Delete an eval, its runs and their items."""
    evals.delete_eval(session, request.app.state.settings, eval_id)
    return Response(status_code=204)


@router.post("/{eval_id}/runs", status_code=201)
def create_run(request: Request, session: SessionDep, eval_id: str, body: RunCreate):
    """Queue a run of a model on the eval (the worker runs it)."""
    model, data_source = shapes.run_request(body.data_source, body.model)
    row = runs.create_run(
        session,
        request.app.state.settings,
        eval_id,
        model=model,
        data_source=data_source,
        name=body.name,
        metadata=body.metadata,
    )
    return _run(row, request)


@router.get("/{eval_id}/runs")
def list_runs(
    request: Request,
    session: SessionDep,
    eval_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "desc",
    status: Literal["queued", "in_progress", "completed", "canceled", "failed"] | None = None,
):
    """An eval's runs newest first (`order=asc` for oldest first); `status` filters; `after` a run id."""
    rows, has_more = runs.list_runs(session, eval_id, after=after, limit=limit, order=order, status=status)
    return {"object": "list", "data": [_run(r, request) for r in rows], "has_more": has_more}


@router.get("/{eval_id}/runs/{run_id}")
def get_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """One run, with its progress and pass rates (overall and per grader, with 95% intervals)."""
    return _run(runs.get_run(session, eval_id, run_id), request)


@router.post("/{eval_id}/runs/{run_id}/cancel")
def cancel_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """Cancel a run (a running one stops at its next batch; what it graded stays)."""
    return _run(runs.cancel_run(session, eval_id, run_id), request)


@router.delete("/{eval_id}/runs/{run_id}", status_code=204)
def delete_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """Delete a run and its items."""
    runs.delete_run(session, request.app.state.settings, eval_id, run_id)
    return Response(status_code=204)


@router.get("/{eval_id}/runs/{run_id}/output_items")
def list_output_items(
    session: SessionDep,
    eval_id: str,
    run_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Literal["pass", "fail", "error"] | None = None,
):
    """A run's items in order: each item, the model's answer, every grade; `status` filters; `after` an item id."""
    run = runs.get_run(session, eval_id, run_id)
    rows, has_more = runs.list_output_items(
        session, eval_id, run_id, status=status, after=after, limit=limit, order=order
    )
    return {"object": "list", "data": [shapes.output_item(r, run) for r in rows], "has_more": has_more}


@router.get("/{eval_id}/runs/{run_id}/output_items/{output_item_id}")
def get_output_item(session: SessionDep, eval_id: str, run_id: str, output_item_id: str):
    """One output item."""
    run = runs.get_run(session, eval_id, run_id)
    return shapes.output_item(runs.get_output_item(session, eval_id, run_id, output_item_id), run)
