"""Passwords, API keys and the cookie-signing secret (no FastAPI here: the guard in app/web/security.py calls us)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from sqlalchemy.engine import Engine
from sqlmodel import select

from app.config import Settings
from app.tables import ApiKey, AppSetting
from app.tables.common import utcnow
from app.tables.db import session_scope

PASSWORD_SETTING = "password_hash"
KEY_CACHE_SECONDS = 5.0


def hash_key(key: str) -> str:
    """The stored form of an API key (sha256: keys are long random strings, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A scrypt hash of a dashboard password, as `salt$hash` in hex."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"{salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether the password matches a hash made by hash_password."""
    salt_hex, _, digest_hex = stored.partition("$")
    try:
        candidate = hash_password(password, bytes.fromhex(salt_hex))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.partition("$")[2], digest_hex)


def load_secret_key(settings: Settings) -> str:
    """The configured cookie secret, or one generated once and kept in data_dir."""
    if settings.secret_key:
        return settings.secret_key.get_secret_value()
    path = settings.storage_path("secret_key")
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class AuthState:
    """What the request guard needs to know, with a short cache so each API call is not a query."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self._key_hashes: set[str] = set()
        self._keys_loaded_at = 0.0
        self._password_hash: str | None = None
        self._password_loaded_at = 0.0

    def password_hash(self) -> str | None:
        """The dashboard password hash in force (environment first, then the one set in the browser)."""
        if self.settings.password:
            if self._password_hash is None:
                self._password_hash = hash_password(self.settings.password.get_secret_value())
            return self._password_hash
        if time.monotonic() - self._password_loaded_at > KEY_CACHE_SECONDS:
            with session_scope(self.engine) as session:
                row = session.get(AppSetting, PASSWORD_SETTING)
                self._password_hash = row.value if row else None
            self._password_loaded_at = time.monotonic()
        return self._password_hash

    def password_required(self) -> bool:
        """Whether pages need a login."""
        return self.password_hash() is not None

    def check_password(self, password: str) -> bool:
        """Whether the password opens the dashboard."""
        stored = self.password_hash()
        return stored is not None and verify_password(password, stored)

    def key_is_valid(self, key: str) -> bool:
        """Whether a bearer key is the configured one or one created on the settings page."""
        configured = self.settings.api_key
        if configured and hmac.compare_digest(configured.get_secret_value(), key):
            return True
        digest = hash_key(key)
        if digest in self._key_hashes and time.monotonic() - self._keys_loaded_at < KEY_CACHE_SECONDS:
            return True
        with session_scope(self.engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if row is None:
                return False
            row.last_used_at = utcnow()
        self._key_hashes.add(digest)
        self._keys_loaded_at = time.monotonic()
        return True

    def forget_cached_keys(self) -> None:
        """Drop cached key hashes (after a key is revoked)."""
        self._key_hashes.clear()
        self._password_loaded_at = 0.0


def create_api_key(engine: Engine, name: str = "") -> str:
    """Create and store (hashed) a new API key; the plain key is returned once and never kept."""
    key = "tb-" + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        session.add(ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key)))
    return key


def ensure_api_key(settings: Settings, engine: Engine) -> str | None:
    """On first start with no key configured, create one and return it so the caller prints it once."""
    if settings.api_key:
        return None
    with session_scope(engine) as session:
        if session.exec(select(ApiKey)).first() is not None:
            return None
    return create_api_key(engine, name="generated on first start")


class LoginThrottle:
    """Counts failed logins per client in a sliding minute; refuses more than `per_minute` of them."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str) -> list[float]:
        cutoff = time.monotonic() - 60
        recent = [t for t in self._failures.get(client, []) if t > cutoff]
        self._failures[client] = recent
        return recent

    def blocked(self, client: str) -> bool:
        """Whether this client has used up its failed attempts for now."""
        return len(self._recent(client)) >= self.per_minute

    def failed(self, client: str) -> None:
        """Record one failed attempt."""
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        """Forget the client's failures after a good login."""
        self._failures.pop(client, None)


def store_password(engine: Engine, password: str) -> None:
    """Set the dashboard password (kept only as a scrypt hash)."""
    if len(password) < 8:
        raise ValueError("A password needs at least 8 characters.")
    with session_scope(engine) as session:
        row = session.get(AppSetting, PASSWORD_SETTING)
        if row is None:
            session.add(AppSetting(key=PASSWORD_SETTING, value=hash_password(password)))
        else:
            row.value = hash_password(password)
            row.updated_at = utcnow()
