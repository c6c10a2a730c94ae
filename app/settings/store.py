"""Settings changed in the browser and stored in the database, as the areas read them.

The keys and get_value/set_value live with their table (app/tables/settings_store.py), where the providers, a layer
below the areas, read them too; they are re-exported here so an area imports its stored settings from one place.
"""

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
    "set_value",
]


def destructive_actions_enabled(session: Session) -> bool:
    """The maintenance switch: whether cancel/delete buttons and endpoints are allowed."""
    return bool(get_value(session, DESTRUCTIVE_ACTIONS, True))
