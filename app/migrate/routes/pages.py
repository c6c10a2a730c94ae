"""The "Move off OpenAI" page: connect, list the fine-tuned models, import their files, train, capture, compare."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request

from app.migrate import page as migrate_page
from app.migrate.import_files import import_job_files
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["migrate"])


@router.get("/migrate", include_in_schema=False)
def migrate(request: Request, session: SessionDep):
    """The move, step by step; the account is read from OpenAI on each visit."""
    ctx = migrate_page.page_context(session, request.app.state.settings)
    return render(request, "migrate/index.html", ctx)


@router.post("/migrate/import", include_in_schema=False)
def import_files(request: Request, session: SessionDep, job_id: str = Form(max_length=200)):
    """Import an OpenAI job's training and validation files as datasets (once: again returns the same ones)."""
    imported = import_job_files(session, request.app.state.settings, job_id)
    ctx = {"imported": imported, "job_id": job_id}
    return render(request, "migrate/imported.html", ctx, partial="migrate/_imported.html")


@router.post("/migrate/train", include_in_schema=False)
async def train(request: Request, session: SessionDep):
    """Queue the local replacement job and go to its page."""
    values = dict(await request.form())
    job = migrate_page.launch_replacement(session, request.app.state.settings, values, request.app.state.report_cache)
    return redirect(request, f"/jobs/{job.id}")


@router.post("/migrate/capture", include_in_schema=False)
async def capture(request: Request, session: SessionDep):
    """Start capturing a model's answers to a dataset's prompts (a golden set when it completes)."""
    values = dict(await request.form())
    migrate_page.capture(session, request.app.state.settings, values)
    return redirect(request, "/migrate#step-capture")


@router.get("/migrate/captures", include_in_schema=False)
def captures(request: Request, session: SessionDep):
    """The capture runs' table (htmx refreshes it while a run goes on)."""
    return render(request, "migrate/_captures.html", migrate_page.captures_context(session))


@router.post("/migrate/compare", include_in_schema=False)
async def compare(request: Request, session: SessionDep):
    """Start the replacement's run on the golden set and go to its agreement report."""
    values = dict(await request.form())
    run = migrate_page.compare(session, request.app.state.settings, values)
    return redirect(request, f"/migrate/agreement/{run.id}")


@router.get("/migrate/agreement/{run_id}", include_in_schema=False)
def agreement(request: Request, run_id: str, session: SessionDep):
    """How closely the replacement answers like the golden set (refreshes itself until the run ends)."""
    ctx = {"report": migrate_page.report(session, run_id)}
    return render(request, "migrate/agreement.html", ctx, partial="migrate/_agreement.html")
