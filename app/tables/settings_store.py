"""Server-side settings changed on the settings page, API keys (hashed) and playground conversations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, Session, SQLModel

from app.tables.common import json_field, new_id, utcnow

# Keys of AppSetting rows that more than one area reads (the OpenAI provider reads the first two).
OPENAI_API_KEY = "openai_api_key"
OPENAI_BASE_URL = "openai_base_url"
# The maintenance switch (app/settings/maintenance.py). The key keeps the name it had when the switch was called
# "destructive actions", so that an installation's stored choice carries over; no stored value reads as off.
MAINTENANCE = "destructive_actions_enabled"


class AppSetting(SQLModel, table=True):
    """One key/value the operator set in the browser (OpenAI key, maintenance switch, password hash…)."""

    __tablename__ = "app_settings"

    key: str = Field(primary_key=True, max_length=100)
    value: Any = json_field(None)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiKey(SQLModel, table=True):
    """A bearer key for /api and /v1; only its sha256 is stored."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=16)  # first characters, to recognise a key in the list
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Conversation(SQLModel, table=True):
    """A playground or compare conversation, kept so a reload does not lose it."""

    __tablename__ = "conversations"

    id: str = Field(default_factory=lambda: new_id("conv"), primary_key=True, max_length=64)
    title: str = Field(default="", max_length=300)
    models: Any = json_field(list)  # model ids shown side by side
    params: Any = json_field(dict)  # system message, temperature, top_p, max_tokens
    messages: Any = json_field(list)  # shared user turns and each model's replies
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


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
