"""OpenAI-compatible /v1/evals: evals, their runs and the runs' output items, in OpenAI's objects and errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.evals import evals, runs, shapes
from app.web.api_types import DbIdField
from app.web.rendering import SessionDep

router = APIRouter(prefix="/v1/evals", tags=["v1"])
Limit = Annotated[int, Query(ge=1, le=100, description="How many to return (1-100).")]
Order = Annotated[Literal["asc", "desc"], Query(description="Oldest first (asc, the default) or newest first.")]
RunStatus = Literal["queued", "in_progress", "completed", "canceled", "failed"]
ItemStatus = Literal["pass", "fail", "error"]


class DatasetRef(BaseModel):
    """Tuneboard's addition: the dataset whose examples are the eval's items, and which of its splits."""

    id: DbIdField
    split: Literal["validation", "train", "all"] | None = Field(
        None, description="validation (held out), train, or all; by default validation when the dataset has one."
    )


class EvalCreate(BaseModel):
    """OpenAI's CreateEvalRequest, plus `dataset` (ours): items from a Tuneboard dataset's split."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    metadata: dict[str, str] | None = None
    data_source_config: dict[str, Any] | None = Field(
        None,
        description='OpenAI\'s {"type": "custom", "item_schema": {...}, "include_sample_schema": true}. Optional '
        "with `dataset`: the item schema is then read from the dataset.",
    )
    testing_criteria: list[dict[str, Any]] = Field(
        description="Graders: string_check, text_similarity, score_model, label_model (OpenAI's), json_check and "
        "regex_check (Tuneboard's)."
    )
    dataset: DatasetRef | None = Field(
        None,
        description="Tuneboard's addition: take the items from this dataset (each example's conversation before "
        "its last assistant turn as item.messages, that answer as item.reference). Send it from the openai SDK "
        'with extra_body={"dataset": {"id": 3, "split": "validation"}}.',
    )


class EvalUpdate(BaseModel):
    """OpenAI's update body: a new name and/or metadata."""

    name: str | None = None
    metadata: dict[str, str] | None = None


class RunCreate(BaseModel):
    """OpenAI's CreateEvalRunRequest (the model is `data_source.model`)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    metadata: dict[str, str] | None = None
    data_source: dict[str, Any] | None = Field(
        None,
        description='OpenAI\'s {"type": "completions", "model": ..., "input_messages": {"type": "template", '
        '"template": [...]} or {"type": "item_reference", "item_reference": "item.messages"}, "source": '
        '{"type": "file_content", "content": [{"item": {...}}]} or {"type": "file_id", "id": "file-..."}, '
        '"sampling_params": {...}}. Tuneboard also reads a source {"type": "dataset", "dataset_id": 3, "split": '
        '"validation"}; for an eval made from a dataset, source and input_messages may be left out.',
    )


def _base(request: Request) -> str:
    return str(request.base_url)


@router.post("", status_code=201)
def create_eval(request: Request, session: SessionDep, body: EvalCreate):
    """Create an eval: how its items look and the graders that judge each model's answers.

    Tuneboard's addition: `dataset` ({"id": N, "split": "validation"}) takes the items from a dataset's examples.
    """
    row = evals.create_eval(
        session,
        request.app.state.settings,
        name=body.name,
        testing_criteria=body.testing_criteria,
        data_source_config=body.data_source_config,
        dataset_id=body.dataset.id if body.dataset else None,
        split=body.dataset.split if body.dataset else None,
        metadata=body.metadata,
    )
    return shapes.eval_object(row)


@router.get("")
def list_evals(
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    order_by: Literal["created_at", "updated_at"] = "created_at",
):
    """Evals, oldest first unless `order=desc`; `after` an eval id."""
    rows, has_more = evals.list_evals(session, after=after, limit=limit, order=order, order_by=order_by)
    return shapes.list_page([shapes.eval_object(r) for r in rows], has_more)


@router.get("/{eval_id}")
def retrieve_eval(session: SessionDep, eval_id: str):
    """One eval."""
    return shapes.eval_object(evals.get_eval(session, eval_id))


@router.post("/{eval_id}")
def update_eval(session: SessionDep, eval_id: str, body: EvalUpdate):
    """Rename an eval or replace its metadata."""
    return shapes.eval_object(evals.update_eval(session, eval_id, name=body.name, metadata=body.metadata))


@router.delete("/{eval_id}")
def delete_eval(request: Request, session: SessionDep, eval_id: str):
    """Delete an eval with its runs and their output items."""
    evals.delete_eval(session, request.app.state.settings, eval_id)
    return shapes.eval_deleted(eval_id)


@router.post("/{eval_id}/runs", status_code=201)
def create_run(request: Request, session: SessionDep, eval_id: str, body: RunCreate):
    """Queue a run: one model answers every item, then the eval's graders grade each answer."""
    model, data_source = shapes.run_request(body.data_source, (body.model_extra or {}).get("model"))
    row = runs.create_run(
        session,
        request.app.state.settings,
        eval_id,
        model=model,
        data_source=data_source,
        name=body.name,
        metadata=body.metadata,
    )
    return shapes.run_object(row, _base(request))


@router.get("/{eval_id}/runs")
def list_runs(
    request: Request,
    session: SessionDep,
    eval_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: RunStatus | None = None,
):
    """An eval's runs, oldest first unless `order=desc`; `status` filters; `after` a run id."""
    rows, has_more = runs.list_runs(session, eval_id, after=after, limit=limit, order=order, status=status)
    return shapes.list_page([shapes.run_object(r, _base(request)) for r in rows], has_more)


@router.get("/{eval_id}/runs/{run_id}")
def retrieve_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """One run: its status, pass/fail counts overall and per grader, token usage."""
    return shapes.run_object(runs.get_run(session, eval_id, run_id), _base(request))


@router.post("/{eval_id}/runs/{run_id}/cancel")
def cancel_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """Cancel a run: at once when queued, within moments when running (the items graded so far stay)."""
    return shapes.run_object(runs.cancel_run(session, eval_id, run_id), _base(request))


@router.post("/{eval_id}/runs/{run_id}")
def cancel_run_at_its_path(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """Cancel a run, posted to the run itself as OpenAI's API reference describes (the SDK posts to /cancel)."""
    return shapes.run_object(runs.cancel_run(session, eval_id, run_id), _base(request))


@router.delete("/{eval_id}/runs/{run_id}")
def delete_run(request: Request, session: SessionDep, eval_id: str, run_id: str):
    """Delete a run and its output items."""
    runs.delete_run(session, request.app.state.settings, eval_id, run_id)
    return shapes.run_deleted(run_id)


@router.get("/{eval_id}/runs/{run_id}/output_items")
def list_output_items(
    session: SessionDep,
    eval_id: str,
    run_id: str,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: ItemStatus | None = None,
):
    """A run's output items (each item, the model's answer and every grade) in item order; `status` filters."""
    run = runs.get_run(session, eval_id, run_id)
    rows, has_more = runs.list_output_items(
        session, eval_id, run_id, status=status, after=after, limit=limit, order=order
    )
    return shapes.list_page([shapes.output_item(r, run) for r in rows], has_more)


@router.get("/{eval_id}/runs/{run_id}/output_items/{output_item_id}")
def retrieve_output_item(session: SessionDep, eval_id: str, run_id: str, output_item_id: str):
    """One output item."""
    run = runs.get_run(session, eval_id, run_id)
    return shapes.output_item(runs.get_output_item(session, eval_id, run_id, output_item_id), run)
