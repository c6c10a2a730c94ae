"""Settings changed in the browser and stored in the database, as the areas read them.

The keys and get_value/set_value live with their table (app/tables/settings_store.py), where the providers, a layer
below the areas, read them too; they are re-exported here so an area imports its stored settings from one place.
The maintenance switch's rule is app/settings/maintenance.py.
"""

from __future__ import annotations

from sqlmodel import Session

from app.tables.settings_store import (
    MAINTENANCE,
    OPENAI_API_KEY,
    OPENAI_BASE_URL,
    get_secret,
    get_value,
    is_encrypted,
    set_secret,
    set_value,
)

__all__ = [
    "MAINTENANCE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "SECRET_SETTINGS",
    "encrypt_clear_secrets",
    "get_secret",
    "get_value",
    "set_secret",
    "set_value",
]

# Stored settings that are secrets: kept encrypted with the installation's secret key.
SECRET_SETTINGS = (OPENAI_API_KEY,)


def encrypt_clear_secrets(session: Session, secret_key: str) -> int:
    """Encrypt secrets stored in clear by an older version (run at start); how many there were."""
    done = 0
    for key in SECRET_SETTINGS:
        value = get_value(session, key)
        if value and not is_encrypted(value):
            set_secret(session, key, str(value), secret_key)
            done += 1
    return done
