"""The settings page's domain: OpenAI connection, the maintenance switch, and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.errors import Invalid, NotFound
from app.settings.auth import create_api_key
from app.settings.maintenance import maintenance_enabled
from app.settings.store import (
    OPENAI_API_KEY,
    OPENAI_BASE_URL,
    get_secret,
    get_value,
    set_secret,
    set_value,
)
from app.tables import ApiKey


@dataclass
class SettingsView:
    """What the settings page shows: secrets only as their last 4 characters."""

    openai_key_masked: str
    openai_key_source: str  # "settings page" | "environment" | ""
    openai_base_url: str
    maintenance_enabled: bool
    maintenance_env: bool | None  # TUNEBOARD_MAINTENANCE, written as the stored value at each start when given
    api_keys: list[ApiKey]
    env_api_key: bool


def settings_view(session: Session, settings: Settings, secret_key: str) -> SettingsView:
    """The page's current values."""
    stored = get_secret(session, OPENAI_API_KEY, secret_key)
    env_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    key, source = (stored, "settings page") if stored else (env_key, "environment" if env_key else "")
    base_url = get_value(session, OPENAI_BASE_URL) or settings.openai_base_url or ""
    return SettingsView(
        openai_key_masked=_mask(key),
        openai_key_source=source,
        openai_base_url=base_url,
        maintenance_enabled=maintenance_enabled(session),
        maintenance_env=settings.maintenance,
        api_keys=list_api_keys(session),
        env_api_key=settings.api_key is not None,
    )


def _mask(secret: str | None) -> str:
    # A secret is only ever shown back as its last 4 characters.
    if not secret:
        return ""
    return "…" + secret[-4:]


def save_openai(
    session: Session,
    settings: Settings,
    secret_key: str,
    api_key: str | None,
    base_url: str | None,
    clear_key: bool = False,
) -> None:
    """Store the OpenAI key (encrypted; a blank field keeps the current one) and base URL (blank: api.openai.com).

    A new base URL needs the key entered again in the same form: the key in force is never sent to an address
    it was not saved for (a forged or careless change would otherwise hand it to another host).
    """
    key = (api_key or "").strip()
    if key and (len(key) < 8 or any(c.isspace() for c in key)):
        raise Invalid("That does not look like an API key (no spaces, at least 8 characters).", param="openai_api_key")
    url = (base_url or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise Invalid("The base URL must start with http:// or https://.", param="openai_base_url")
    current = get_value(session, OPENAI_BASE_URL) or settings.openai_base_url or ""
    if url.rstrip("/") != current.strip().rstrip("/"):
        if settings.openai_api_key:
            raise Invalid(
                "The OpenAI key in use comes from the environment (OPENAI_API_KEY): change the base URL there too "
                "(OPENAI_BASE_URL), so that key is never sent to an address it was not meant for.",
                param="openai_base_url",
            )
        if get_value(session, OPENAI_API_KEY) and not key and not clear_key:
            raise Invalid(
                "Enter the API key again to use a new base URL: the stored key is never sent to another address. "
                "(Or tick “Forget the stored key”.)",
                param="openai_api_key",
            )
    if clear_key:
        set_value(session, OPENAI_API_KEY, None)
    elif key:
        set_secret(session, OPENAI_API_KEY, key, secret_key)
    set_value(session, OPENAI_BASE_URL, url or None)


def list_api_keys(session: Session) -> list[ApiKey]:
    """Stored API keys, newest first (hashes only; the plain key is never kept)."""
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())))


def new_api_key(engine: Engine, name: str) -> str:
    """Create a key and return it in full, the only time it is ever shown."""
    name = (name or "").strip()
    if len(name) > 200:
        raise Invalid("Key names are at most 200 characters.", param="name")
    # A blank name would leave a list of identical "unnamed" rows; the creation time tells keys apart.
    return create_api_key(engine, name=name or f"key created {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    """Delete a stored key so it stops working (callers also drop the guard's key cache)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"No API key #{key_id}.", param="key_id")
    session.delete(row)
    session.commit()
    return row
