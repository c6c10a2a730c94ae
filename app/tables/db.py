"""Database engine factory, SQLite pragmas and sessions. No module-level engine: the app factory owns one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from app.config import Settings


def make_engine(settings: Settings) -> Engine:
    """Create the engine for the configured database, with SQLite pragmas set on every connection."""
    url = settings.resolved_database_url
    make_private_dir(settings.data_dir)
    if url.startswith("sqlite"):
        _private_sqlite_files(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000}
        )
        busy_ms = settings.sqlite_busy_timeout_ms
        event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, busy_ms))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_private_dir(path: Path) -> None:
    """Create the data directory owner-only (0700), and take group/other access off one that has it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        path.chmod(0o700)


def _private_sqlite_files(url: str) -> None:
    # The database holds password and key hashes and the (encrypted) OpenAI key: owner-only. Creating the file
    # 0600 before SQLite opens it is enough for new files: SQLite gives its -wal and -shm files the same mode.
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    database = Path(name)
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists() and path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o600)


def _sqlite_pragmas(dbapi_connection, _record, busy_timeout_ms: int = 30000) -> None:
    # WAL lets readers (pages, event streams) run while a worker writes; foreign keys make cascades real;
    # busy_timeout turns brief write contention into a wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite (some queries differ from PostgreSQL)."""
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A short unit of work: commit on success, roll back on error, always close."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
