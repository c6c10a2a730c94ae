"""Settings changed in the browser and stored in the database (not secrets in the clear: see mask())."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.tables import AppSetting
from app.tables.common import utcnow

OPENAI_API_KEY = "openai_api_key"
OPENAI_BASE_URL = "openai_base_url"
DESTRUCTIVE_ACTIONS = "destructive_actions_enabled"


def get_value(session: Session, key: str, default: Any = None) -> Any:
    """The stored value for key, or default."""
    row = session.get(AppSetting, key)
    return default if row is None else row.value


def set_value(session: Session, key: str, value: Any) -> None:
    """Store a value (commits)."""
    row = session.get(AppSetting, key)
    if row is None:
        row = AppSetting(key=key, value=value)
    else:
        row.value = value
        row.updated_at = utcnow()
    session.add(row)
    session.commit()


def destructive_actions_enabled(session: Session) -> bool:
    """The maintenance switch: whether cancel/delete buttons and endpoints are allowed."""
    return bool(get_value(session, DESTRUCTIVE_ACTIONS, True))


def mask(secret: str | None) -> str:
    """A secret as it may be shown back: only its last 4 characters."""
    if not secret:
        return ""
    return "…" + secret[-4:]
