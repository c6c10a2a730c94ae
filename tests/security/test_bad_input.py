"""Hostile or careless values a fuzzer found, each answered with a clear 4xx in its door's shape, never a 500.

(30-digit ids and offsets on every route: tests/security/test_route_guards.py walks them all.)
"""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import API_KEY, browser_client
from tests.integration.test_playground import sse_events
from tests.support.builders import chat, make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401

DEEP = "[" * 100_000 + "]" * 100_000  # json recurses once per level: far past Python's recursion limit
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def api(app):
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def browser(app):
    client = browser_client(app)
    yield client
    client.__exit__(None, None, None)


def _raw_json(client, method: str, url: str, text: str, **kwargs):
    """A body as written: JSON with Infinity, 1e400 or 2**70, which json.dumps would not produce as such."""
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return client.request(method, url, content=text.encode(), headers=headers, **kwargs)


def _v1_error(response, param: str | None = None) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    return error["message"]


# -- job creation: n_epochs 1e400 (infinite once parsed) ---------------------------------------------------------
def test_an_infinite_n_epochs_is_refused_on_api_jobs(api, session):
    dataset = make_dataset(session)
    body = f'{{"dataset_id": {dataset.id}, "model": "{TINY}", "hyperparameters": {{"n_epochs": 1e400}}}}'
    response = _raw_json(api, "POST", "/api/jobs", body)
    assert response.status_code == 400, response.text
    assert response.json()["param"] == "hyperparameters.n_epochs"
    assert "between 1 and 50" in response.json()["detail"]


@pytest.mark.parametrize("where", ["hyperparameters", "method"])
def test_an_infinite_or_overlong_n_epochs_is_refused_on_v1_jobs(api, where):
    data = b"\n".join(json.dumps(chat(i)).encode() for i in range(10))
    upload = api.post("/v1/files", files={"file": ("t.jsonl", io.BytesIO(data))}, data={"purpose": "fine-tune"})
    file_id = upload.json()["id"]
    for value in ("1e400", "-1e400", "1" + "0" * 400):
        section = f'{{"n_epochs": {value}}}'
        if where == "method":
            section = f'{{"type": "supervised", "supervised": {{"hyperparameters": {section}}}}}'
        body = f'{{"model": "{TINY}", "training_file": "{file_id}", "{where}": {section}}}'
        message = _v1_error(_raw_json(api, "POST", "/v1/fine_tuning/jobs", body), "hyperparameters.n_epochs")
        assert "between 1 and 50" in message


# -- /v1/chat/completions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_a_list_or_deeply_nested_role_is_refused_without_echoing_it(api, stream):
    for role in (["user"], {"a": 1}, json.loads("[" * 500 + "]" * 500)):
        body = {"model": TINY, "messages": [{"role": role, "content": "Hi"}], "stream": stream}
        message = _v1_error(api.post("/v1/chat/completions", json=body), "messages[0].role")
        assert "Use system, developer, user, assistant or tool" in message and len(message) < 200


def test_a_seed_beyond_64_bits_is_refused_naming_it(api):
    body = f'{{"model": "{TINY}", "messages": [{{"role": "user", "content": "Hi"}}], "seed": {2**70}}}'
    _v1_error(_raw_json(api, "POST", "/v1/chat/completions", body), "seed")


@pytest.mark.parametrize("value", ["Infinity", "1e400", "NaN"])
def test_a_non_finite_max_tokens_is_refused_naming_it(api, value):
    body = f'{{"model": "{TINY}", "messages": [{{"role": "user", "content": "Hi"}}], "max_tokens": {value}}}'
    _v1_error(_raw_json(api, "POST", "/v1/chat/completions", body), "max_tokens")


@pytest.mark.parametrize("stream", [False, True])
def test_a_denormal_temperature_samples_greedily_instead_of_failing(api, stream):
    # 1e-320 is a valid temperature (0 <= t <= 2) that float32 rounds to 0: dividing the logits by it made NaNs.
    body = {"model": TINY, "messages": HI, "max_tokens": 3, "temperature": 1e-320, "stream": stream}
    cold = api.post("/v1/chat/completions", json=body)
    assert cold.status_code == 200, cold.text
    greedy = api.post("/v1/chat/completions", json=body | {"temperature": 0})
    if stream:
        assert "[DONE]" in cold.text and '"error"' not in cold.text
    else:
        text = cold.json()["choices"][0]["message"]["content"]
        assert text == greedy.json()["choices"][0]["message"]["content"]


def test_a_100_000_deep_body_is_refused_on_v1(api):
    assert _raw_json(api, "POST", "/v1/chat/completions", DEEP).status_code == 400


# -- the playground ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", "/playground/chat"), ("POST", "/playground/conversations"), ("PUT", "/playground/conversations/c1")],
)
def test_a_100_000_deep_body_is_refused_on_the_playground(browser, method, url):
    response = _raw_json(browser, method, url, DEEP, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "nests too deeply" in response.text


def test_a_100_000_deep_conversation_is_refused_when_saved_as_an_example(browser, session):
    dataset = make_dataset(session)
    form = {"dataset_id": str(dataset.id), "messages": DEEP, "reply": "x"}
    response = browser.post("/playground/save-example", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "could not be read" in response.text


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "1e400", "NaN", "1" + "0" * 400, "[[[1]]]", '{"a": 1}'])
def test_a_non_finite_or_non_numeric_max_tokens_is_refused_by_the_playground(browser, value):
    params = f'{{"max_tokens": {value}}}'
    saved = _raw_json(
        browser,
        "POST",
        "/playground/conversations",
        f'{{"models": ["{TINY}"], "params": {params}, "messages": []}}',
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 400 and "max_tokens must be" in saved.text
    chat_body = f'{{"model": "{TINY}", "params": {params}, "messages": {json.dumps(HI)}}}'
    events = sse_events(_raw_json(browser, "POST", "/playground/chat", chat_body).text)
    assert events[-1][0] == "error" and "max_tokens must be" in events[-1][1]["message"]


def test_a_conversation_that_is_not_an_object_is_refused(browser):
    response = browser.post("/playground/conversations", json=[1, 2], headers={"HX-Request": "true"})
    assert response.status_code == 400 and "JSON object" in response.text


# -- dashboard forms that carry ids as text ------------------------------------------------------------------------
def test_ids_too_large_for_the_database_in_dashboard_forms_are_refused_or_ignored(browser, session):
    dataset = make_dataset(session, n_train=1)
    huge = "1" + "0" * 29
    htmx = {"HX-Request": "true"}
    copy = {"action": "copy", "ids": ["1"], "target_dataset": huge}
    assert browser.post(f"/datasets/{dataset.id}/bulk", data=copy, headers=htmx).status_code == 404
    assert browser.post(f"/datasets/{dataset.id}/bulk", data={"action": "delete", "ids": [huge]}).status_code == 422
    assert browser.get("/jobs", params={"dataset_id": huge}).status_code == 200  # an impossible filter is ignored
    assert browser.post("/jobs/new/estimate", data={"dataset_id": huge}).status_code == 200
    launch = browser.post("/jobs", data={"dataset_id": huge}, headers=htmx)
    assert launch.status_code == 400 and "Choose a dataset" in launch.text


@pytest.mark.parametrize(
    "method",
    [{"type": []}, {"type": {"a": 1}}, {"type": "supervised", "supervised": {"hyperparameters": [1]}}],
)
def test_a_method_of_the_wrong_shape_is_refused_on_both_job_apis(api, session, method):
    dataset = make_dataset(session)
    response = api.post("/api/jobs", json={"dataset_id": dataset.id, "model": TINY, "method": method})
    assert response.status_code == 400, response.text
    assert response.json()["param"].startswith("method")
    v1 = api.post("/v1/fine_tuning/jobs", json={"model": TINY, "training_file": "file-x", "method": method})
    assert _v1_error(v1).startswith(("method must look like", "hyperparameters must be"))
