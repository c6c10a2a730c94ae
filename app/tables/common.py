"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Column
from sqlmodel import Field

# The largest integer the database stores (SQLite's INTEGER, PostgreSQL's bigint): the drivers refuse a larger Python
# int with an error of their own, so ids, offsets and cursors from outside are bounded to it before they are queried.
MAX_DB_INT = 2**63 - 1


def fits_db_int(value: int) -> bool:
    """Whether an integer from outside can be queried (larger ones name no row)."""
    return -MAX_DB_INT - 1 <= value <= MAX_DB_INT


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str, separator: str = "-") -> str:
    """An OpenAI-style identifier such as ftjob-3f9a… (or eval_3f9a… with separator "_"), random and URL-safe."""
    return f"{prefix}{separator}{secrets.token_hex(12)}"


class _IntegerKeyed(Protocol):
    id: int | None


def stored_id(row: _IntegerKeyed) -> int:
    """The id of a stored row: the tables type it `int | None` because a new row has none until it is inserted."""
    if row.id is None:
        raise ValueError(f"This {type(row).__name__} has no id: it is not stored yet.")
    return row.id


def json_field(default: Any = None, nullable: bool = True) -> Any:
    """A JSON column (TEXT on SQLite, JSON on PostgreSQL)."""
    if callable(default):
        return Field(default_factory=default, sa_column=Column(JSON, nullable=nullable))
    return Field(default=default, sa_column=Column(JSON, nullable=nullable))


def unix(ts: datetime | None) -> int | None:
    """Seconds since the epoch, as OpenAI's API reports times."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())
