"""Passwords, API keys and login sessions (no FastAPI here: the guard in app/web/security.py calls us)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.config import Settings
from app.tables import ApiKey, AppSetting
from app.tables.common import utcnow
from app.tables.db import session_scope

PASSWORD_SETTING = "password_hash"
# The hash of TUNEBOARD_PASSWORD, kept so sessions outlive a restart with the same password and end with a new one.
ENV_PASSWORD_SETTING = "env_password_hash"
REVOKED_SESSIONS_SETTING = "revoked_sessions"
# How stale a process's view of keys, the password and revoked sessions may be: another web process sharing the
# database sees a revocation or a new password within this many seconds.
CACHE_SECONDS = 2.0
MIN_PASSWORD_LENGTH = 12
SESSION_MAX_AGE = 14 * 24 * 3600


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


class AuthState:
    """What the request guard needs to know, each answer cached briefly so a request is not a query."""

    def __init__(
        self, settings: Settings, engine: Engine, secret_key: str, clock: Callable[[], float] = time.monotonic
    ):
        self.settings = settings
        self.engine = engine
        self.secret_key = secret_key
        self.clock = clock
        self._key_checked_at: dict[str, float] = {}  # key hash -> when the database last confirmed it
        self._password_hash: str | None = None
        self._password_loaded_at = -CACHE_SECONDS
        self._verified_env_hashes: set[str] = set()
        self._revoked: dict[str, float] = {}
        self._revoked_loaded_at = -CACHE_SECONDS

    # -- the password ------------------------------------------------------------------------------------------
    def password_hash(self) -> str | None:
        """The dashboard password hash in force (TUNEBOARD_PASSWORD first, then the one set with `tuneboard serve`)."""
        if self.clock() - self._password_loaded_at < CACHE_SECONDS:
            return self._password_hash
        if self.settings.password:
            self._password_hash = self._env_password_hash(self.settings.password.get_secret_value())
        else:
            with session_scope(self.engine) as session:
                row = session.get(AppSetting, PASSWORD_SETTING)
                self._password_hash = row.value if row else None
        self._password_loaded_at = self.clock()
        return self._password_hash

    def _env_password_hash(self, password: str) -> str:
        # The stored hash of the environment's password, replaced (ending every session) when the password changed.
        with session_scope(self.engine) as session:
            row = session.get(AppSetting, ENV_PASSWORD_SETTING)
            stored = row.value if row else None
        if isinstance(stored, str) and (stored in self._verified_env_hashes or verify_password(password, stored)):
            self._verified_env_hashes.add(stored)
            return stored
        fresh = hash_password(password)
        try:
            with session_scope(self.engine) as session:
                row = session.get(AppSetting, ENV_PASSWORD_SETTING)
                if row is None:
                    session.add(AppSetting(key=ENV_PASSWORD_SETTING, value=fresh))
                else:
                    row.value, row.updated_at = fresh, utcnow()
        except IntegrityError:  # another process stored its hash at the same moment: use that one
            return self._env_password_hash(password)
        self._verified_env_hashes.add(fresh)
        return fresh

    def password_required(self) -> bool:
        """Whether pages need a login."""
        return self.password_hash() is not None

    def check_password(self, password: str) -> bool:
        """Whether the password opens the dashboard."""
        stored = self.password_hash()
        return stored is not None and verify_password(password, stored)

    def network_refusal(self) -> str | None:
        """Why the dashboard must not be reachable from the network as things stand, or None when it may be."""
        if self.settings.password and len(self.settings.password.get_secret_value()) < MIN_PASSWORD_LENGTH:
            return (
                f"TUNEBOARD_PASSWORD is shorter than {MIN_PASSWORD_LENGTH} characters: too easy to guess for a "
                "dashboard reachable from the network. Choose a longer one, or bind to 127.0.0.1."
            )
        if not self.password_required():
            return (
                "no dashboard password is set, so anyone on the network could use it. Set one first "
                f"(TUNEBOARD_PASSWORD=..., at least {MIN_PASSWORD_LENGTH} characters), or bind to 127.0.0.1."
            )
        return None

    # -- login sessions ----------------------------------------------------------------------------------------
    def session_fingerprint(self) -> str:
        """A tag of the password in force, carried in session cookies: a new password ends every session."""
        stored = self.password_hash() or ""
        return hmac.new(self.secret_key.encode(), f"session:{stored}".encode(), hashlib.sha256).hexdigest()[:32]

    def session_revoked(self, session_id: str) -> bool:
        """Whether that login session was ended by a logout (in this process or another)."""
        if self.clock() - self._revoked_loaded_at >= CACHE_SECONDS:
            with session_scope(self.engine) as session:
                row = session.get(AppSetting, REVOKED_SESSIONS_SETTING)
                self._revoked = dict(row.value) if row and isinstance(row.value, dict) else {}
            self._revoked_loaded_at = self.clock()
        return session_id in self._revoked

    def revoke_session(self, session_id: str) -> None:
        """End one login session everywhere (logout); entries go once the cookie would have expired anyway."""
        now = time.time()
        with session_scope(self.engine) as session:
            row = session.get(AppSetting, REVOKED_SESSIONS_SETTING)
            current: dict[str, Any] = dict(row.value) if row and isinstance(row.value, dict) else {}
            kept = {sid: until for sid, until in current.items() if isinstance(until, int | float) and until > now}
            kept[session_id] = now + SESSION_MAX_AGE
            if row is None:
                session.add(AppSetting(key=REVOKED_SESSIONS_SETTING, value=kept))
            else:
                row.value, row.updated_at = kept, utcnow()
        self._revoked = kept

    # -- API keys ----------------------------------------------------------------------------------------------
    def key_is_valid(self, key: str) -> bool:
        """Whether a bearer key is the configured one or one created on the settings page (and not revoked)."""
        configured = self.settings.api_key
        if configured and hmac.compare_digest(configured.get_secret_value(), key):
            return True
        digest = hash_key(key)
        # Each key's confirmation expires on its own: a key revoked by another process stops working here within
        # CACHE_SECONDS, however busy the other keys are.
        checked = self._key_checked_at.get(digest)
        if checked is not None and self.clock() - checked < CACHE_SECONDS:
            return True
        with session_scope(self.engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if row is None:
                self._key_checked_at.pop(digest, None)
                return False
            row.last_used_at = utcnow()
        self._key_checked_at[digest] = self.clock()
        return True

    def forget_cached_keys(self) -> None:
        """Drop cached key confirmations (after a key is revoked here)."""
        self._key_checked_at.clear()


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


def store_password(engine: Engine, password: str) -> None:
    """Set the dashboard password (kept only as a scrypt hash); every existing session ends."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    with session_scope(engine) as session:
        row = session.get(AppSetting, PASSWORD_SETTING)
        if row is None:
            session.add(AppSetting(key=PASSWORD_SETTING, value=hash_password(password)))
        else:
            row.value = hash_password(password)
            row.updated_at = utcnow()
