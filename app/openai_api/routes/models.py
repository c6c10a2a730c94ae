"""OpenAI-compatible /v1/models: base models, tuned models and checkpoints; delete a tuned model."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.jobs import jobs, model_catalog
from app.openai_api import shapes as openai_shapes
from app.web.rendering import SessionDep

router = APIRouter(prefix="/v1/models", tags=["v1"])


@router.get("")
def list_models(request: Request, session: SessionDep):
    """Every model Tuneboard can chat with."""
    models = model_catalog.list_models(session, request.app.state.settings)
    return openai_shapes.list_envelope([openai_shapes.model_object(m) for m in models])


@router.get("/{model_id:path}")
def retrieve_model(request: Request, session: SessionDep, model_id: str):
    """One model (tuned ids hold colons: `ft:base:suffix:job`); 404 as OpenAI for an unknown id."""
    settings = request.app.state.settings
    listed = [m for m in model_catalog.list_models(session, settings) if m.id == model_id]
    return openai_shapes.model_object(listed[0] if listed else model_catalog.resolve_model(session, settings, model_id))


@router.delete("/{model_id:path}")
def delete_model(request: Request, session: SessionDep, model_id: str):
    """Delete a tuned model's adapter; base models cannot be deleted (403 maintenance_disabled while maintenance
    is off)."""
    return openai_shapes.model_deleted(jobs.delete_tuned_model(session, request.app.state.settings, model_id))
