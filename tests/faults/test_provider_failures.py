"""A provider that fails while a person waits: OpenAI down or refusing, a local model that does not load.

/v1 answers in OpenAI's error shape (503 when trying again later may work, 502 otherwise), /api as
`{"detail", "code"}`, a started /v1 stream ends with an `error` object as OpenAI's does, and the playground's
stream ends with an `error` event: never a bare 500 or a stream that just stops. OpenAI is the stand-in
(tests/support/fake_openai.py) on a real uvicorn, so the real SDK meets the failures.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, browser_client, free_port, make_settings
from tests.integration.test_playground import sse_events
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app

MODEL = "gpt-4o-mini-2024-07-18"
BROKEN = "broken-local"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory):
    """A local model directory that looks like one (config.json) but cannot be loaded."""
    path = tmp_path_factory.mktemp("models") / BROKEN
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    return path


def _app(tmp_path, fake_url: str, broken_model, key: str = KEY):
    settings = make_settings(
        tmp_path / "data", openai_api_key=key, openai_base_url=f"{fake_url}/v1", local_models={BROKEN: broken_model}
    )
    upgrade(settings)
    return create_app(settings)


@pytest.fixture
def outage():
    """A stand-in whose state the test flips; a new server per test keeps the switches apart."""
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


@pytest.fixture
def app(tmp_path, outage, broken_model):
    return _app(tmp_path, outage.url, broken_model)


@pytest.fixture
def api(app):
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


def _openai_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _stream_data(text: str) -> list:
    return [json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]" for line in text.splitlines() if line]


# -- /v1/chat/completions ----------------------------------------------------------------------------------------
def test_openai_down_is_a_503_in_openai_s_shape_saying_what_failed(api, outage):
    outage.state.fail_times(500, 10)  # more than the SDK's own retries
    error = _openai_error(api.post("/v1/chat/completions", json={"model": MODEL, "messages": HI}), 503)
    assert error["code"] == "provider_unavailable" and error["type"] == "server_error"
    assert "OpenAI could not be reached or failed" in error["message"]


def test_openai_refusing_the_key_is_a_502_that_says_so(tmp_path, outage, broken_model):
    app = _app(tmp_path, outage.url, broken_model, key="sk-not-the-right-key")
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        error = _openai_error(client.post("/v1/chat/completions", json={"model": MODEL, "messages": HI}), 502)
    assert error["code"] == "invalid_api_key" and "OpenAI rejected the API key" in error["message"]


def test_a_stream_that_fails_before_its_first_chunk_is_answered_with_a_status(api, outage):
    outage.state.fail_times(500, 10)
    response = api.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "stream": True})
    assert _openai_error(response, 503)["code"] == "provider_unavailable"


def test_a_stream_that_fails_midway_ends_with_an_error_object_as_openai_s_does(api, outage):
    outage.state.chat_fails_after = 2
    response = api.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "stream": True})
    assert response.status_code == 200
    events = _stream_data(response.text)
    assert [e["choices"][0]["delta"].get("content") for e in events[:3]] == ["", "Hello", " from"]
    last = events[-1]
    assert set(last) == {"error"} and "OpenAI failed while trying to chat" in last["error"]["message"]
    assert last["error"]["code"] == "provider_unavailable" and "[DONE]" not in events


def test_a_local_model_that_does_not_load_is_a_502_naming_it(api):
    error = _openai_error(api.post("/v1/chat/completions", json={"model": BROKEN, "messages": HI}), 502)
    assert error["code"] == "model_failed" and f"The model {BROKEN} failed" in error["message"]


# -- the OpenAI job import (/api) --------------------------------------------------------------------------------
def test_the_job_import_with_openai_down_is_a_503_in_the_api_s_shape(api, outage):
    outage.state.fail_times(500, 10)
    response = api.post("/api/jobs/import-openai")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "provider_unavailable" and "OpenAI could not be reached" in body["detail"]


def test_the_job_import_without_any_openai_key_is_a_502_that_says_how_to_add_one(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        response = client.post("/api/jobs/import-openai")
    assert response.status_code == 502, response.text
    assert "No OpenAI API key is set" in response.json()["detail"]


def test_the_job_import_works_once_openai_is_back(api, outage):
    outage.state.fail_times(500, 10)
    assert api.post("/api/jobs/import-openai").status_code == 503
    outage.state.failures.clear()
    assert api.post("/api/jobs/import-openai").json() == {"imported": 0}


# -- the playground stream -----------------------------------------------------------------------------------------
def _playground_chat(app, model: str) -> list[tuple[str, dict]]:
    client = browser_client(app)
    try:
        body = {"model": model, "column": 0, "params": {"max_tokens": 8}, "messages": HI}
        response = client.post("/playground/chat", json=body)
    finally:
        client.__exit__(None, None, None)
    assert response.status_code == 200
    return sse_events(response.text)


def test_the_playground_stream_ends_with_an_error_event_when_openai_fails_midway(app, outage):
    outage.state.chat_fails_after = 1
    events = _playground_chat(app, MODEL)
    assert events[0] == ("message", {"text": "Hello"})
    name, data = events[-1]
    assert name == "error" and "OpenAI failed while trying to chat" in data["message"]


def test_the_playground_stream_ends_with_an_error_event_when_openai_is_down(app, outage):
    outage.state.fail_times(500, 10)
    name, data = _playground_chat(app, MODEL)[-1]
    assert name == "error" and data["code"] == "provider_unavailable"


def test_the_playground_stream_ends_with_an_error_event_when_a_local_model_does_not_load(app):
    name, data = _playground_chat(app, BROKEN)[-1]
    assert name == "error" and data["code"] == "model_failed" and BROKEN in data["message"]
