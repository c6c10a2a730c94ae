"""Secrets at rest: the data directory and database owner-only, the OpenAI key encrypted with the installation's
secret key (older clear-text values still work and are encrypted at the next start)."""

from __future__ import annotations

import sqlite3
import stat

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.main import create_app
from app.providers.openai import OpenAIProvider
from app.settings import store as app_settings
from app.tables.migrate import upgrade
from app.tables.settings_store import load_secret_key
from tests.conftest import csrf_token, make_settings

OPENAI_KEY = "sk-storedAtRestQ7mV2nX9pL4"


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_installation_is_owner_only(tmp_path):
    settings = Settings(data_dir=tmp_path / "fresh" / "data")  # secret key generated and kept in data_dir
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/healthz").status_code == 200
    data = settings.data_dir
    assert _mode(data) == 0o700
    assert _mode(data / "secret_key") == 0o600
    database = data / "tuneboard.db"
    assert _mode(database) == 0o600
    for extra in (data / "tuneboard.db-wal", data / "tuneboard.db-shm"):
        if extra.exists():
            assert _mode(extra) == 0o600, extra


def test_an_existing_world_readable_installation_is_tightened_at_start(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    settings.data_dir.chmod(0o755)
    (settings.data_dir / "tuneboard.db").chmod(0o644)
    create_app(settings)
    assert _mode(settings.data_dir) == 0o700
    assert _mode(settings.data_dir / "tuneboard.db") == 0o600


def test_a_generated_secret_key_file_is_kept_and_private(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    first = load_secret_key(settings)
    assert load_secret_key(settings) == first and len(first) >= 40
    assert _mode(settings.data_dir / "secret_key") == 0o600


def test_the_openai_key_saved_on_the_page_is_encrypted_in_the_database_file(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        client.headers["X-CSRF-Token"] = csrf_token(client)
        assert client.post("/settings/openai", data={"openai_api_key": OPENAI_KEY}).status_code == 200
    app.state.engine.dispose()
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("tuneboard.db*"))
    assert OPENAI_KEY.encode() not in raw
    # The provider (in the worker) reads it back in clear.
    provider = OpenAIProvider(settings, engine=app.state.engine)
    assert provider.api_key() == OPENAI_KEY


def test_another_secret_key_cannot_read_the_stored_key(tmp_path, session, settings):
    app_settings.set_secret(session, app_settings.OPENAI_API_KEY, OPENAI_KEY, "s" * 40)
    assert app_settings.get_secret(session, app_settings.OPENAI_API_KEY, "t" * 40) is None
    assert app_settings.get_secret(session, app_settings.OPENAI_API_KEY, "s" * 40) == OPENAI_KEY


def test_a_key_stored_in_clear_by_an_older_version_works_and_is_encrypted_at_start(settings, engine):
    with Session(engine) as session:
        app_settings.set_value(session, app_settings.OPENAI_API_KEY, OPENAI_KEY)
    assert OpenAIProvider(settings, engine=engine).api_key() == OPENAI_KEY  # read as it is, before any start
    with TestClient(create_app(settings)):
        pass
    with Session(engine) as session:
        stored = app_settings.get_value(session, app_settings.OPENAI_API_KEY)
        assert OPENAI_KEY not in stored
        assert app_settings.get_secret(session, app_settings.OPENAI_API_KEY, "s" * 40) == OPENAI_KEY
    assert OpenAIProvider(settings, engine=engine).api_key() == OPENAI_KEY


def test_the_database_has_no_clear_secret_after_a_start(settings, engine):
    with Session(engine) as session:
        app_settings.set_value(session, app_settings.OPENAI_API_KEY, OPENAI_KEY)
    with TestClient(create_app(settings)):
        pass
    with sqlite3.connect(settings.data_dir / "tuneboard.db") as connection:
        values = [str(v) for (v,) in connection.execute("SELECT value FROM app_settings")]
    assert not any(OPENAI_KEY in v for v in values)
