"""Job pages: the list and the selected job side by side (live badges, live detail), the new fine-tune form, and
a job's actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from app.jobs import forms as job_form
from app.jobs import monitoring
from app.jobs.example_losses import job_example_losses
from app.jobs.jobs import get_job
from app.jobs.promote import promote_checkpoint
from app.web.api_types import DbIdQuery
from app.web.rendering import SessionDep, flash, is_htmx, redirect, render

router = APIRouter(tags=["jobs"])


def _restoring_history(request: Request) -> bool:
    # htmx asks for a whole page (with HX-Request set) when Back lands on a URL it pushed: never a fragment then.
    return request.headers.get("hx-history-restore-request") == "true"


@router.get("/jobs", include_in_schema=False)
def jobs_list(
    request: Request,
    session: SessionDep,
    status: str = "",
    provider: str = "",
    dataset_id: str = "",
    selected: str = "",
):
    """All jobs, newest first, filtered by status, provider and dataset, beside an empty detail pane; the list
    refreshes itself while jobs run (keeping the `selected` job highlighted)."""
    ctx = job_form.jobs_overview(session, status=status, provider=provider, dataset_id=dataset_id, selected=selected)
    ctx["query"] = request.url.query
    partial = None if _restoring_history(request) else "jobs/_list.html"
    return render(request, "jobs/list.html", ctx, partial=partial)


@router.get("/jobs/new", include_in_schema=False)
def new_job(request: Request, session: SessionDep, dataset_id: DbIdQuery = None):
    """The "New fine-tune" form, preselecting a dataset."""
    ctx = job_form.form_context(
        session, request.app.state.settings, {"dataset_id": dataset_id}, request.app.state.report_cache
    )
    return render(request, "jobs/new.html", ctx)


@router.post("/jobs/new/estimate", include_in_schema=False)
async def new_job_estimate(request: Request, session: SessionDep):
    """The estimate panel for the form's current values (htmx refreshes it when inputs change)."""
    values = dict(await request.form())
    ctx = job_form.form_context(session, request.app.state.settings, values, request.app.state.report_cache)
    ctx["eval_oob"] = True  # the "Evaluate each checkpoint" choice follows the dataset: swapped out of band
    return render(request, "jobs/_estimate.html", ctx)


@router.post("/jobs", include_in_schema=False)
async def launch_job(request: Request, session: SessionDep):
    """Create the job from the form and go to its page; refusals come back as a message, losing nothing."""
    values = dict(await request.form())
    job = job_form.launch(session, request.app.state.settings, values, request.app.state.report_cache)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{job.id}"})
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}", include_in_schema=False)
def job_page(request: Request, job_id: str, session: SessionDep):
    """A job beside the jobs list: summary, live log and chart, hyperparameters, checkpoints and actions. From htmx:
    the detail pane (with the list out of band) when the list swaps it in, else the summary alone."""
    if _restoring_history(request) or not is_htmx(request):
        partial = None
    else:
        partial = "jobs/_pane.html" if request.headers.get("hx-target") == "job-pane" else "jobs/_summary.html"
    ctx = job_form.job_split_context(session, job_id, with_list=partial != "jobs/_summary.html")
    return render(request, "jobs/detail.html", ctx, partial=partial)


@router.get("/jobs/{job_id}/results.csv", include_in_schema=False)
def job_results_csv(request: Request, job_id: str, session: SessionDep):
    """The job's metrics as a CSV file (OpenAI's result file columns), streamed."""
    get_job(session, job_id)
    body = monitoring.iter_results_csv(request.app.state.engine, job_id)
    headers = {"Content-Disposition": f'attachment; filename="{job_id}-results.csv"'}
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/jobs/{job_id}/cancel", include_in_schema=False)
def cancel(request: Request, job_id: str, session: SessionDep):
    """Ask the job to stop (refused while maintenance is off)."""
    job = job_form.cancel(session, request.app.state.settings, job_id)
    ctx = job_form.job_split_context(session, job_id, with_list=not is_htmx(request))
    done = (
        f"Cancelled job {job.id}." if job.status.is_terminal else f"Cancelling job {job.id}: it stops at the next step."
    )
    return flash(request, render(request, "jobs/detail.html", ctx, partial="jobs/_summary.html"), done)


@router.post("/jobs/{job_id}/rerun", include_in_schema=False)
def rerun(request: Request, job_id: str, session: SessionDep):
    """Launch a new job with the same settings and open it."""
    job = job_form.rerun(session, request.app.state.settings, job_id)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/jobs/{job_id}/delete-model", include_in_schema=False)
def delete_model(
    request: Request, job_id: str, session: SessionDep, next_url: Annotated[str, Query(alias="next")] = ""
):
    """Delete the job's tuned model (refused while maintenance is off: a flash message from an htmx request)."""
    job_form.delete_job_model(session, request.app.state.settings, job_id)
    target = next_url if next_url.startswith("/") and not next_url.startswith("//") else f"/jobs/{job_id}"
    model = get_job(session, job_id).fine_tuned_model
    return redirect(request, target, f"Deleted the tuned model {model}. Its checkpoints stay available.")


@router.post("/jobs/{job_id}/checkpoints/{checkpoint_id}/promote", include_in_schema=False)
def promote(request: Request, job_id: str, checkpoint_id: str, session: SessionDep):
    """Use a checkpoint as the job's tuned model (the "best checkpoint" button), then show the job again."""
    model = promote_checkpoint(session, request.app.state.settings, job_id, checkpoint_id)
    return redirect(request, f"/jobs/{job_id}", f"The tuned model {model.id} now uses the chosen checkpoint.")


@router.get("/jobs/{job_id}/example-losses", include_in_schema=False)
def job_example_losses_panel(request: Request, job_id: str, session: SessionDep):
    """The job page's "examples the model could not learn" card and the loss spikes under its chart (it reloads
    itself until the job ends)."""
    losses = job_example_losses(session, request.app.state.settings, job_id)
    return render(request, "jobs/_example_losses.html", {"losses": losses})
