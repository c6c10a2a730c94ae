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
