"""Settings changed in the browser and stored in the database (not secrets in the clear: see mask())."""

from __future__ import annotations

from sqlmodel import Session

from app.tables.settings_store import (
    DESTRUCTIVE_ACTIONS,
    OPENAI_API_KEY,
    OPENAI_BASE_URL,
    get_value,
    set_value,
)

__all__ = [
    "DESTRUCTIVE_ACTIONS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "destructive_actions_enabled",
    "get_value",
    "mask",
    "set_value",
]


def destructive_actions_enabled(session: Session) -> bool:
    """The maintenance switch: whether cancel/delete buttons and endpoints are allowed."""
    return bool(get_value(session, DESTRUCTIVE_ACTIONS, True))


def mask(secret: str | None) -> str:
    """A secret as it may be shown back: only its last 4 characters."""
    if not secret:
        return ""
    return "…" + secret[-4:]
