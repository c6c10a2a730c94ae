""" "Make rejected answers" from a supervised dataset: the form, the run's progress page (polled), stopping a run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.datasets.datasets import get_dataset
from app.playground import playground, preferences, rejected
from app.web.api_types import DbId
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["playground"], include_in_schema=False)


@router.get("/datasets/{dataset_id}/rejected-answers")
def rejected_form(request: Request, session: SessionDep, dataset_id: DbId, model: str = ""):
    """Choose the model that answers and where the pairs go."""
    dataset = get_dataset(session, dataset_id)
    prompts, skipped = rejected.usable_prompts(session, dataset_id)
    groups = playground.model_groups(session, request.app.state.settings)
    ctx = {
        "dataset": dataset,
        "usable": len(prompts),
        "skipped": skipped,
        "groups": groups,
        "labels": playground.model_labels(session, groups),
        "chosen": model,
        "targets": preferences.preference_datasets(session, exclude=dataset_id),
        "latest": request.app.state.rejected_answers.latest_for(dataset_id),
    }
    return render(request, "playground/rejected_new.html", ctx)


@router.post("/datasets/{dataset_id}/rejected-answers")
def start(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    model: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = preferences.NEW,
    new_name: Annotated[str, Form()] = "",
    temperature: Annotated[str, Form()] = "0.7",
    max_tokens: Annotated[str, Form()] = "256",
):
    """Start answering in the background and show the run's progress."""
    params = rejected.chat_params(temperature, max_tokens)
    task = request.app.state.rejected_answers.start(session, dataset_id, model, target, new_name, params)
    return redirect(request, f"/rejected-answers/{task.id}")


@router.get("/rejected-answers/{task_id}")
def progress(request: Request, task_id: str):
    """How far a run has got; the partial polls itself while the run goes on."""
    task = request.app.state.rejected_answers.get(task_id)
    return render(
        request, "playground/rejected_task.html", {"task": task}, partial="playground/_rejected_progress.html"
    )


@router.post("/rejected-answers/{task_id}/stop")
def stop(request: Request, task_id: str):
    """Stop a run; the pairs written so far stay."""
    task = request.app.state.rejected_answers.request_stop(task_id)
    return redirect(request, f"/rejected-answers/{task.id}", "Stopping: the pairs written so far stay.")
