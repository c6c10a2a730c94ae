"""Models on other OpenAI-compatible servers (vLLM, llama-server, another Tuneboard: Settings.chat_servers) are
listed as "<server>/<model>" and answer in the playground, in evals and through /v1, each request going to its own
server with its own key and the server's own model name (docs/serving.md)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from pydantic import ValidationError

from app.main import create_app
from app.playground.playground import stream_reply
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app


@pytest.fixture(scope="module")
def vllm():
    """A stand-in for a vLLM server serving an exported adapter under the name "support-bot"."""
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


def served_settings(tmp_path, server, **extra):
    servers = [{"name": "gpu-box", "base_url": server.url + "/v1", "api_key": KEY, "models": ["support-bot"]}]
    settings = make_settings(tmp_path / "data", chat_servers=servers, **extra)
    upgrade(settings)
    return settings


def test_v1_lists_a_served_model_and_relays_its_chat_to_its_server(tmp_path, vllm):
    settings = served_settings(tmp_path, vllm)
    with LiveServer(create_app(settings), free_port()) as live:
        with OpenAI(base_url=live.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            listed = {m.id: m.owned_by for m in client.models.list()}
            whole = client.chat.completions.create(
                model="gpu-box/support-bot", messages=[{"role": "user", "content": "hi"}]
            )
            streamed = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in client.chat.completions.create(
                    model="gpu-box/support-bot", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                if chunk.choices
            )
    assert listed["gpu-box/support-bot"] == "gpu-box"
    # The server was asked for its own name of the model, and answered with it.
    assert whole.choices[0].message.content == streamed == "Hello from support-bot"
    assert vllm.state.chats[-1]["model"] == "support-bot"


def test_the_playground_offers_served_models_and_streams_their_reply(tmp_path, vllm):
    settings = served_settings(tmp_path, vllm)
    app = create_app(settings)
    with TestClient(app) as client:
        page = client.get("/playground")
        events = list(
            stream_reply(
                make_engine(settings),
                settings,
                app.state.chat_engine,
                {"model": "gpu-box/support-bot", "messages": [{"role": "user", "content": "hello"}]},
            )
        )
    assert page.status_code == 200
    assert "Served models" in page.text and "gpu-box/support-bot" in page.text
    text = "".join(data.get("text", "") for name, data in events if name is None)
    assert text == "Hello from support-bot"
    assert events[-1][0] == "done"


def test_a_served_model_whose_server_refuses_the_key_fails_in_words(tmp_path, vllm):
    servers = [{"name": "gpu-box", "base_url": vllm.url + "/v1", "api_key": "sk-wrong", "models": ["support-bot"]}]
    settings = make_settings(tmp_path / "data", chat_servers=servers)
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app):
        events = list(
            stream_reply(
                make_engine(settings),
                settings,
                app.state.chat_engine,
                {"model": "gpu-box/support-bot", "messages": [{"role": "user", "content": "hello"}]},
            )
        )
    name, data = events[-1]
    assert name == "error"
    assert data["code"] == "invalid_api_key"
    assert data["message"].startswith("The chat server gpu-box rejected the API key")
    assert "TUNEBOARD_CHAT_SERVERS" in data["message"] and "OpenAI" not in data["message"]


@pytest.mark.parametrize(
    "server",
    [
        {"name": "bad name", "base_url": "http://x/v1", "models": ["m"]},
        {"name": "gpu", "base_url": "http://x/v1", "models": []},
    ],
)
def test_a_chat_server_needs_a_plain_name_and_at_least_one_model(tmp_path, server):
    with pytest.raises(ValidationError):
        make_settings(tmp_path / "data", chat_servers=[server])
