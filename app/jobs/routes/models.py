"""The models page: tuned models with their job, base model, dataset snapshot and date."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request

from app.jobs import forms as job_form
from app.settings.maintenance import maintenance_enabled
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["models"])


@router.get("/models", include_in_schema=False)
def models_page(request: Request, session: SessionDep, deleted: str = ""):
    """Every tuned model that was not deleted; `deleted` names the model just deleted, for the message."""
    ctx = {
        "rows": job_form.tuned_models_view(session),
        "base_models": job_form.base_models_view(request.app.state.settings),
        "maintenance": maintenance_enabled(session),
        "deleted": job_form.deleted_model(session, deleted),
    }
    return render(request, "models/index.html", ctx)


@router.post("/models/{model_id:path}/delete", include_in_schema=False)
def delete_model(request: Request, model_id: str, session: SessionDep):
    """Delete a tuned model (refused while maintenance is off: a flash message from an htmx request)."""
    job_form.delete_model(session, request.app.state.settings, model_id)
    return redirect(request, f"/models?deleted={quote(model_id, safe='')}")
