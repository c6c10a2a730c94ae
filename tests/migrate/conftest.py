"""The stand-in OpenAI server for the move-off-OpenAI tests: one uvicorn per module, its state fresh per test."""

from __future__ import annotations

import pytest

from app.settings.store import OPENAI_API_KEY, OPENAI_BASE_URL, set_secret, set_value
from app.tables.settings_store import load_secret_key
from tests.conftest import LiveServer, free_port
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app


@pytest.fixture(scope="module")
def fake_server():
    """A real uvicorn serving the stand-in, shared by a module's tests."""
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


@pytest.fixture
def fake(fake_server):
    """The stand-in with its state reset for this test."""
    fake_server.state.__dict__.update(FakeOpenAIState().__dict__)
    return fake_server


def provider_options(fake, **extra) -> dict:
    """OpenAI provider options that reach the stand-in quickly (no long retry pauses)."""
    return {"api_key": KEY, "base_url": fake.url + "/v1", "retry_seconds": 0.01, "max_retries": 1} | extra


def connect(session, settings, fake) -> None:
    """Save the stand-in's key and address on the settings page, as a user would."""
    set_secret(session, OPENAI_API_KEY, KEY, load_secret_key(settings))
    set_value(session, OPENAI_BASE_URL, fake.url + "/v1")
