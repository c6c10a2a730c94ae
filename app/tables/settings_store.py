"""Server-side settings changed on the settings page, API keys (hashed) and playground conversations.

Secrets stored here (the OpenAI key) are encrypted with the installation's secret key (AES-256-GCM), which lives
in the settings or in data_dir/secret_key; this module loads it, so every layer that reads a secret can.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, DateTime
from sqlmodel import Field, Session, SQLModel

from app.config import Settings
from app.tables.common import json_field, new_id, utcnow

log = logging.getLogger("tuneboard")

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


# Stored secrets look like "tbenc1:<urlsafe base64 of nonce + ciphertext>"; anything else is an older clear value.
SECRET_PREFIX = "tbenc1:"
NONCE_BYTES = 12


def load_secret_key(settings: Settings) -> str:
    """The installation's secret key: the configured one, or one generated once and kept in data_dir (0600)."""
    if settings.secret_key:
        return settings.secret_key.get_secret_value()
    path = settings.storage_path("secret_key")
    try:
        # O_EXCL: two processes starting together never write two different keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _cipher(secret_key: str) -> AESGCM:
    # A key of its own for stored secrets, derived from the installation key (which also signs cookies).
    return AESGCM(hmac.new(secret_key.encode(), b"tuneboard stored secrets v1", hashlib.sha256).digest())


def encrypt_secret(key: str, value: str, secret_key: str) -> str:
    """The stored form of a secret setting; the setting's key is bound in, so a value cannot be moved to another."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher(secret_key).encrypt(nonce, value.encode(), key.encode())
    return SECRET_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def is_encrypted(value: Any) -> bool:
    """Whether a stored value is an encrypted secret (rather than an older clear-text one)."""
    return isinstance(value, str) and value.startswith(SECRET_PREFIX)


def get_secret(session: Session, key: str, secret_key: str) -> str | None:
    """A secret setting in clear, or None (unset, or sealed with another installation's secret key)."""
    stored = get_value(session, key)
    if not stored:
        return None
    if not is_encrypted(stored):
        return str(stored)  # stored before secrets were encrypted; the app's start encrypts it
    try:
        raw = base64.urlsafe_b64decode(stored[len(SECRET_PREFIX) :])
        return _cipher(secret_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], key.encode()).decode()
    except (InvalidTag, ValueError):
        log.warning(
            "The stored %s cannot be decrypted with this process's secret key: give every Tuneboard process the "
            "same TUNEBOARD_SECRET_KEY (or data_dir), or enter the value again on the settings page.",
            key,
        )
        return None


def set_secret(session: Session, key: str, value: str | None, secret_key: str) -> None:
    """Store a secret setting encrypted (None forgets it; commits)."""
    set_value(session, key, encrypt_secret(key, value, secret_key) if value else None)
