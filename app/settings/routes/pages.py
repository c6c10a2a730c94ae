"""The settings page: OpenAI connection, the maintenance switch, API keys."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session

from app.settings import page as settings_page
from app.settings.maintenance import set_maintenance
from app.web.api_types import DbId
from app.web.rendering import SessionDep, flash, render

router = APIRouter(tags=["settings"])


def _page(request: Request, session: Session, **extra: object):
    view = settings_page.settings_view(session, request.app.state.settings, request.app.state.secret_key)
    return render(request, "settings/index.html", {"view": view, **extra}, partial="settings/_keys.html")


@router.get("/settings", include_in_schema=False)
def settings_index(request: Request, session: SessionDep, saved: str = ""):
    """Show the settings."""
    return _page(request, session, saved=saved)


@router.post("/settings/openai", include_in_schema=False)
def save_openai(
    request: Request,
    session: SessionDep,
    openai_api_key: str = Form(""),
    openai_base_url: str = Form(""),
    clear_key: str = Form(""),
):
    """Store the OpenAI key and base URL."""
    state = request.app.state
    settings_page.save_openai(
        session, state.settings, state.secret_key, openai_api_key, openai_base_url, clear_key=clear_key == "on"
    )
    return RedirectResponse("/settings?saved=openai", status_code=303)


@router.post("/settings/destructive", include_in_schema=False)
def save_maintenance(session: SessionDep, enabled: str = Form("")):
    """Turn the maintenance switch on or off (the URL keeps the switch's former name)."""
    set_maintenance(session, enabled == "on")
    return RedirectResponse("/settings?saved=maintenance", status_code=303)


@router.post("/settings/api-keys", include_in_schema=False)
def create_key(request: Request, session: SessionDep, name: str = Form("")):
    """Create an API key and show it once."""
    key = settings_page.new_api_key(request.app.state.engine, name)
    return _page(request, session, new_key=key)


@router.post("/settings/api-keys/{key_id}/revoke", include_in_schema=False)
def revoke_key(request: Request, key_id: DbId, session: SessionDep):
    """Revoke a key; it stops working at once."""
    key = settings_page.revoke_api_key(session, key_id)
    request.app.state.auth.forget_cached_keys()
    name = f"“{key.name}” ({key.prefix}…)" if key.name else f"{key.prefix}…"
    return flash(request, _page(request, session), f"Revoked the API key {name}: it no longer works.")
