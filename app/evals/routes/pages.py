"""Eval pages: the list, the new-eval form (graders added and checked live), an eval with its runs, a run's page
with live progress; compare and review pages come from app/evals/routes/review_pages.py, included here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile

from app.datasets.datasets import list_datasets
from app.evals import dashboard, eval_form
from app.evals.routes import review_pages
from app.evals.runs import cancel_run
from app.web.api_types import Offset
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["evals"], include_in_schema=False)
router.include_router(review_pages.router)


def _fields(form: FormData) -> tuple[dict[str, str], UploadFile | None]:
    """The posted fields as text, and the uploaded file when one was chosen."""
    values: dict[str, str] = {}
    upload = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            upload = value if value.filename else None
        else:
            values[key] = value
    return values, upload


def _new_form_context(session: SessionDep, request: Request, values: dict[str, str]) -> dict[str, Any]:
    settings = request.app.state.settings
    graders = [
        {**eval_form.grader_form(v.get("type", ""), i), "values": v}
        for i, v in enumerate(eval_form.grader_values(values))
        if v.get("type") in eval_form.GRADER_FIELDS
    ] or [eval_form.grader_form("string_check", 0)]
    return {
        "values": values,
        "datasets": list_datasets(session),
        "splits": eval_form.SPLITS,
        "graders": graders,
        "grader_labels": eval_form.GRADER_LABELS,
        "model_groups": dashboard.model_groups(session, settings),
        "problems": eval_form.grader_problems(values) if values else [],
    }


@router.get("/evals")
def evals_list(request: Request, session: SessionDep):
    """Every eval with its source, graders, runs and the latest finished run's pass rate."""
    return render(request, "evals/list.html", dashboard.evals_overview(session, request.app.state.settings))


@router.get("/evals/new")
def new_eval(request: Request, session: SessionDep, dataset_id: str = ""):
    """The new-eval form (a dataset preselected when given), with one string check to start from."""
    return render(request, "evals/new.html", _new_form_context(session, request, {"dataset_id": dataset_id}))


@router.get("/evals/new/grader")
def new_grader(request: Request, session: SessionDep, type: str = "string_check", index: int = 0):
    """One more grader's fieldset for the form (htmx appends it)."""
    ctx = {
        "g": eval_form.grader_form(type, index),
        "model_groups": dashboard.model_groups(session, request.app.state.settings),
    }
    return render(request, "evals/_grader.html", ctx)


@router.post("/evals/new/check")
async def check_graders(request: Request):
    """What is wrong with each grader as typed so far (the form refreshes this panel on every change)."""
    async with request.form() as form:
        values, _ = _fields(form)
    return render(request, "evals/_grader_check.html", {"problems": eval_form.grader_problems(values)})


@router.post("/evals")
async def create_eval(request: Request, session: SessionDep):
    """Create the eval from the form and open it; refusals come back as a message, losing nothing typed."""
    async with request.form() as form:  # closes the uploaded file whatever happens
        values, upload = _fields(form)
        lines = upload.file if upload is not None and values.get("source") == "upload" else None
        row = eval_form.create_eval_from_form(session, request.app.state.settings, values, lines)
    return redirect(request, f"/evals/{row.id}")


@router.get("/evals/{eval_id}")
def eval_page(request: Request, eval_id: str, session: SessionDep):
    """An eval: items, graders, runs (refreshing while any runs), reviews; run a model, compare, review."""
    ctx = dashboard.eval_page(session, request.app.state.settings, eval_id)
    return render(request, "evals/detail.html", ctx, partial="evals/_runs.html")


@router.post("/evals/{eval_id}/runs")
async def start_run(request: Request, eval_id: str, session: SessionDep):
    """Queue a run of the chosen model and open its page."""
    async with request.form() as form:
        values, _ = _fields(form)
    run = eval_form.run_from_form(session, request.app.state.settings, eval_id, values)
    return redirect(request, f"/evals/{eval_id}/runs/{run.id}")


@router.get("/evals/{eval_id}/runs/{run_id}")
def run_page(request: Request, eval_id: str, run_id: str, session: SessionDep, status: str = "", offset: Offset = 0):
    """A run: live progress while it runs, pass rate per grader, its items filtered by outcome."""
    ctx = dashboard.run_page(session, eval_id, run_id, status, offset)
    ctx["query"] = request.url.query
    return render(request, "evals/run.html", ctx, partial="evals/_run_live.html")


@router.post("/evals/{eval_id}/runs/{run_id}/cancel")
def cancel(request: Request, eval_id: str, run_id: str, session: SessionDep):
    """Stop the run (at once when queued, at the next batch when running)."""
    run = cancel_run(session, eval_id, run_id)
    done = "Cancelled the run." if run.status.is_terminal else "Cancelling the run: it stops after the current batch."
    return redirect(request, f"/evals/{eval_id}/runs/{run_id}", done + " Items already graded are kept.")
