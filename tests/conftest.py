"""Shared fixtures: each test gets its own data dir and SQLite file, built by running the real migrations."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.main import create_app
from app.tables.db import make_engine
from app.tables.migrate import upgrade

API_KEY = "tb-test-key-0123456789"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_settings(data_dir: Path, **overrides) -> Settings:
    """Settings for a test: a private data dir, a known API key, no embedded worker unless asked; the TestClient's
    host name (testserver) is among the allowed hosts."""
    values = {
        "data_dir": data_dir,
        "embedded_worker": False,
        "api_key": API_KEY,
        "secret_key": "s" * 40,
        "allowed_hosts": ["testserver"],
        # No test may reach the network: the Hugging Face Hub is a closed local port unless a test serves one.
        "hf_endpoint": "http://127.0.0.1:9",
        "hf_hub_offline": False,
    }
    values.update(overrides)
    return Settings(**values)


def database_at(data_dir: Path, revision: str):
    """(alembic config, engine) of a fresh SQLite database migrated up to `revision`, for migration tests."""
    from alembic import command

    from app.tables.migrate import alembic_config

    settings = make_settings(data_dir)
    settings.data_dir.mkdir(parents=True)
    config = alembic_config(settings)
    command.upgrade(config, revision)
    return config, make_engine(settings)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, migrated SQLite database under tmp_path."""
    s = make_settings(tmp_path / "data")
    upgrade(s)
    return s


@pytest.fixture
def engine(settings: Settings):
    """The engine for the test database."""
    eng = make_engine(settings)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """A session on the test database."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def app(settings: Settings):
    """A Tuneboard app on the test database."""
    return create_app(settings)


def csrf_token(client) -> str:
    """Open the login page (every page carries the token in a <meta> tag, as app.js reads it) and return the token
    for the browser id cookie the client now holds."""
    html = client.get("/login").text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def browser_client(app) -> TestClient:
    """A TestClient that behaves like a browser tab: it holds the browser id cookie and sends the CSRF header."""
    client = TestClient(app)
    client.__enter__()
    client.headers["X-CSRF-Token"] = csrf_token(client)
    return client


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """A browser-like client for the dashboard pages (CSRF token included)."""
    c = browser_client(app)
    yield c
    c.__exit__(None, None, None)


@pytest.fixture
def api(app) -> Iterator[TestClient]:
    """A client for /api and /v1 with the bearer key set."""
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app, port: int):
        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server serving a Tuneboard app (no embedded worker) on a free port."""
    with LiveServer(create_app(settings), free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL server for the whole test session (tests marked `postgres`)."""
    from tests.pg_cluster import ThrowawayCluster

    cluster = ThrowawayCluster(free_port()).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_settings(tmp_path: Path, pg_cluster) -> Settings:
    """Settings on a fresh, migrated PostgreSQL database (and a private data dir)."""
    s = make_settings(tmp_path / "data", database_url=pg_cluster.create_database())
    upgrade(s)
    return s
