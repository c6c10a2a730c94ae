"""The evals side of the job pages: the job form's launch (it may make an eval first) and the job's eval panel.

The job form posts here, not to /jobs: making an eval is app.evals's work, and app.jobs (below it) cannot ask for
it. The job page (app/templates/jobs/detail.html) loads the panel with hx-get; the panel refreshes itself while
the job runs or a checkpoint's run is still going.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.evals.job_evals import job_panel, launch_with_eval
from app.web.rendering import SessionDep, render

router = APIRouter(tags=["evals"])


@router.post("/jobs/new", include_in_schema=False)
async def launch_job(request: Request, session: SessionDep):
    """Launch from the job form with its "Evaluate each checkpoint" choice, and go to the job's page."""
    values = dict(await request.form())
    job = launch_with_eval(session, request.app.state.settings, values, request.app.state.report_cache)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{job.id}"})
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}/evals", include_in_schema=False)
def job_evals_panel(request: Request, job_id: str, session: SessionDep):
    """The job page's evaluation panel: per-checkpoint scores, the best checkpoint, overfitting, the score chart."""
    panel = job_panel(session, request.app.state.settings, job_id)
    return render(request, "evals/_job_panel.html", {"panel": panel})
