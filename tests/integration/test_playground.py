"""The playground: model picker, token-by-token streaming with the tiny model, persistence, saving examples."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from app.engine.testing import build_tiny_model
from app.main import create_app
from app.playground.playground import parse_chat_request
from app.tables import Conversation, Dataset, Example
from app.tables.migrate import upgrade
from tests.conftest import browser_client, make_settings


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def pg(tmp_path, tiny_model):
    settings = make_settings(tmp_path / "data", local_models={"tiny-llama": tiny_model})
    upgrade(settings)
    app = create_app(settings)
    c = browser_client(app)
    yield c, app
    c.__exit__(None, None, None)


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        event, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            out.append((event, json.loads(data)))
    return out


def chat_body(model="tiny-llama", text="Hello there", **params):
    return {
        "model": model,
        "column": 0,
        "params": {"temperature": 0, "max_tokens": 6, **params},
        "messages": [{"role": "user", "content": text}],
    }


def test_playground_lists_local_models_and_preselects_the_one_in_the_url(pg):
    client, _ = pg
    html = client.get("/playground?model=tiny-llama").text
    assert '<option value="tiny-llama" selected>' in html
    assert "/static/playground.js" in html and "<script>" not in html


def test_reply_streams_token_by_token_then_reports_finish_and_usage(pg):
    client, _ = pg
    response = client.post("/playground/chat", json=chat_body())
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    texts = [d["text"] for e, d in events if e == "message"]
    done = [d for e, d in events if e == "done"]
    assert len(texts) >= 2  # several deltas, not one block
    assert done and done[0]["finish_reason"] in ("stop", "length")
    assert done[0]["usage"]["completion_tokens"] <= 6


def test_unknown_model_and_empty_turn_come_back_as_clear_error_events(pg):
    client, _ = pg
    events = sse_events(client.post("/playground/chat", json=chat_body(model="no-such-model")).text)
    assert events[-1][0] == "error" and "no-such-model" in events[-1][1]["message"]
    body = chat_body()
    body["messages"] = []
    events = sse_events(client.post("/playground/chat", json=body).text)
    assert events == [
        (
            "error",
            {"message": "Write a message first: the conversation must end with your turn.", "code": "invalid_request"},
        )
    ]
    events = sse_events(client.post("/playground/chat", json=chat_body(temperature=5)).text)
    assert "temperature must be between" in events[0][1]["message"]


def test_conversation_persists_so_a_reload_with_its_id_shows_it_escaped(pg):
    client, app = pg
    state = {
        "models": ["tiny-llama"],
        "params": {"system": "Be brief", "temperature": 0.5},
        "messages": [{"role": "user", "content": "<b>hi</b>"}, {"role": "assistant", "content": "hello", "column": 0}],
    }
    conv_id = client.post("/playground/conversations", json=state).json()["id"]
    state["messages"].append({"role": "user", "content": "and again"})
    assert client.put(f"/playground/conversations/{conv_id}", json=state).json() == {"id": conv_id}
    html = client.get(f"/playground?c={conv_id}").text
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert "and again" in html and "Be brief" in html
    with Session(app.state.engine) as s:
        assert s.get(Conversation, conv_id).title == "<b>hi</b>"


def test_saving_a_malformed_conversation_is_refused_and_unknown_ids_are_404(pg):
    client, _ = pg
    bad = {"models": ["tiny-llama"], "messages": [{"role": "robot", "content": "x"}]}
    assert client.post("/playground/conversations", json=bad).status_code == 400
    assert client.get("/playground?c=conv-missing").status_code == 404


def test_compare_view_shows_a_column_per_model(pg):
    client, _ = pg
    html = client.get("/playground/compare?model=tiny-llama&model=tiny-llama").text
    assert html.count('class="card pg-column"') == 2 and 'data-mode="compare"' in html


def test_compare_columns_are_titled_with_their_models_names_not_numbers(pg):
    client, _ = pg
    html = client.get("/playground/compare?model=tiny-llama").text
    assert '<h3 class="pg-column-title" data-column="0">tiny-llama</h3>' in html
    assert '<h3 class="pg-column-title" data-column="1">No model chosen</h3>' in html
    assert '<option value="0">tiny-llama</option>' in html  # "Reply from" names the model too
    assert "Model 2</h3>" not in html


def test_a_reply_cut_at_max_tokens_says_so_after_a_reload(pg):
    client, _ = pg
    state = {
        "models": ["tiny-llama"],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "a long", "column": 0, "cut": True},
            {"role": "user", "content": "and again"},
            {"role": "assistant", "content": "done.", "column": 0},
        ],
    }
    conv_id = client.post("/playground/conversations", json=state).json()["id"]
    html = client.get(f"/playground?c={conv_id}").text
    assert html.count("cut at max tokens") == 1
    assert "cut at max tokens" in client.get("/static/playground.js").text


def test_compare_columns_each_see_only_their_own_replies(pg):
    _client, _ = pg
    body = chat_body()
    body["column"] = 1
    body["messages"] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "from col 0", "column": 0},
        {"role": "assistant", "content": "from col 1", "column": 1},
        {"role": "user", "content": "again"},
    ]
    request = parse_chat_request(body)
    assert [m["content"] for m in request.messages] == ["hi", "from col 1", "again"]


def test_conversation_is_saved_as_a_training_example_with_the_edited_reply_and_its_problems(pg):
    client, app = pg
    with Session(app.state.engine) as s:
        ds = Dataset(name="Playground picks")
        s.add(ds)
        s.commit()
        ds_id = ds.id
    messages = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Lyon", "column": 0},
    ]
    html = client.post(
        "/playground/save-example",
        data={
            "dataset_id": ds_id,
            "split": "train",
            "messages": json.dumps(messages),
            "reply": "Paris.",
            "system": "",
            "column": 0,
        },
        headers={"HX-Request": "true"},
    ).text
    with Session(app.state.engine) as s:
        example = s.exec(select(Example).where(Example.dataset_id == ds_id)).one()
    assert example.messages[-1] == {"role": "assistant", "content": "Paris."}
    assert example.split == "train"
    assert "Saved as" in html and "no system message" in html
    # Numbered as the dataset's page numbers it (its first example is "1"), not by the global id.
    assert f'<a href="/examples/{example.id}">example {example.position + 1}</a> of' in html
    assert "Playground picks" in html and f"#{example.id}" not in html


def test_saving_before_any_reply_is_refused_with_a_message(pg):
    client, app = pg
    with Session(app.state.engine) as s:
        ds = Dataset(name="d")
        s.add(ds)
        s.commit()
        ds_id = ds.id
    response = client.post(
        "/playground/save-example",
        headers={"HX-Request": "true"},
        data={"dataset_id": ds_id, "messages": json.dumps([{"role": "user", "content": "hi"}])},
    )
    assert response.status_code == 400 and "chat first" in response.text


def test_playground_page_is_reachable_without_models_chosen(client):
    assert client.get("/playground").status_code == 200
    assert client.get("/playground/compare").status_code == 200
