"""Settings changed in the browser and stored in the database, as the areas read them.

The keys and get_value/set_value live with their table (app/tables/settings_store.py), where the providers, a layer
below the areas, read them too; they are re-exported here so an area imports its stored settings from one place.
The maintenance switch's rule is app/settings/maintenance.py.
"""

from __future__ import annotations

from app.tables.settings_store import (
    MAINTENANCE,
    OPENAI_API_KEY,
    OPENAI_BASE_URL,
    get_value,
    set_value,
)

__all__ = [
    "MAINTENANCE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "get_value",
    "set_value",
]
