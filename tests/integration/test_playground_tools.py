"""The playground with tools: the tools editor and its check, calls streamed and shown as cards, the person's
results (or errors) sent back to continue, and "save as example" keeping tools, calls and results."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from app.engine.testing import build_tiny_model
from app.main import create_app
from app.tables import Dataset, Example
from app.tables.migrate import upgrade
from tests.conftest import browser_client, make_settings
from tests.integration.test_playground import sse_events
from tests.support.scripted_chat import ScriptedChatEngine, call_chunks

LOOKUP = {
    "name": "lookup_order",
    "description": "Find an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}
TOOL = {"type": "function", "function": LOOKUP}
CALL = {"id": "call_7", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "A17"}'}}
ASKED = {"role": "user", "content": "Where is A17?"}
CALLED = {"role": "assistant", "content": "", "column": 0, "tool_calls": [CALL]}
EDITOR = json.dumps([LOOKUP])  # what the tools editor holds: bare function definitions


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def pg(tmp_path, tiny_model):
    """A browser client on an app whose chat engine answers with a lookup_order call: (client, app, engine)."""
    settings = make_settings(tmp_path / "data", local_models={"tiny-llama": tiny_model})
    upgrade(settings)
    app = create_app(settings)
    engine = ScriptedChatEngine(call_chunks(("lookup_order", {"order_id": "A17"})))
    app.state.chat_engine = engine
    client = browser_client(app)
    yield client, app, engine
    client.__exit__(None, None, None)


def chat(client, messages: list[dict], tools=EDITOR, column: int = 0, **params):
    body = {
        "model": "tiny-llama",
        "column": column,
        "params": {"temperature": 0, "tools": tools, **params},
        "messages": messages,
    }
    return sse_events(client.post("/playground/chat", json=body).text)


def test_calls_stream_as_deltas_and_end_with_the_whole_calls(pg):
    client, _, engine = pg
    events = chat(client, [ASKED], tool_choice="required")
    deltas = [d["tool_calls"][0] for e, d in events if e == "message" and "tool_calls" in d]
    assert deltas[0]["function"]["name"] == "lookup_order" and deltas[0]["id"]
    assert "".join(d["function"]["arguments"] for d in deltas) == '{"order_id": "A17"}'
    done = events[-1]
    assert done[0] == "done" and done[1]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in done[1]["tool_calls"]] == ["lookup_order"]
    params = engine.asked[-1][2]
    assert params.tools == [TOOL] and params.tool_choice == "required"  # bare definitions are wrapped


def test_without_tools_the_engine_gets_none(pg):
    client, _, engine = pg
    chat(client, [ASKED], tools="")
    assert (engine.asked[-1][2].tools, engine.asked[-1][2].tool_choice) == (None, None)


def test_a_typed_result_or_error_goes_back_as_a_tool_message_and_the_chat_continues(pg):
    client, _, engine = pg
    results = [{"role": "tool", "tool_call_id": "call_7", "content": "no such order", "column": 0, "error": True}]
    events = chat(client, [ASKED, CALLED, *results])
    assert events[-1][0] == "done"
    seen = engine.asked[-1][1]
    assert seen[-2] == {"role": "assistant", "content": "", "tool_calls": [CALL]}
    assert seen[-1] == {
        "role": "tool",
        "content": "Error: no such order",
        "tool_call_id": "call_7",
        "name": "lookup_order",
    }


def test_a_call_left_without_its_result_is_refused_with_a_clear_event(pg):
    client, _, _ = pg
    events = chat(client, [ASKED, CALLED, {"role": "user", "content": "never mind"}])
    assert events[-1][0] == "error" and "did not have response messages: call_7" in events[-1][1]["message"]


def test_other_columns_results_stay_in_their_column(pg):
    client, _, engine = pg
    theirs = [{**CALLED, "column": 1}, {"role": "tool", "tool_call_id": "call_7", "content": "x", "column": 1}]
    chat(client, [ASKED, *theirs, {"role": "user", "content": "and?"}], column=0)
    assert [m["role"] for m in engine.asked[-1][1]] == ["user", "user"]


@pytest.mark.parametrize(
    ("tools", "shown"),
    [
        (json.dumps([LOOKUP, {**LOOKUP, "name": "track_shipment"}]), "2 functions: lookup_order, track_shipment"),
        (json.dumps(TOOL), "1 function: lookup_order"),
        ("", "No tools"),
        ("[{name: 1}]", "The tools are not valid JSON"),
        (json.dumps([{"name": "look up"}]), "does not match pattern"),
        (json.dumps([{"name": "f", "parameters": {"type": "array"}}]), "Invalid schema for function &#39;f&#39;"),
    ],
)
def test_the_tools_editor_is_checked_as_a_chat_would_check_it(pg, tools, shown):
    client, _, _ = pg
    html = client.post("/playground/tools-check", data={"tools": tools}, headers={"HX-Request": "true"}).text
    assert shown in html
    assert ('data-valid="false"' in html) == ("not" in shown or "Invalid" in shown or "pattern" in shown)


def test_a_bad_tools_editor_stops_the_chat_with_its_reason(pg):
    client, _, _ = pg
    events = chat(client, [ASKED], tools='[{"name": "f", "parameters": "none"}]')
    assert events[-1][0] == "error" and "tools[0].function.parameters" in events[-1][1]["message"]


def test_a_saved_conversation_shows_its_tools_calls_as_cards_and_results(pg):
    client, _, _ = pg
    result = {"role": "tool", "tool_call_id": "call_7", "content": "<b>shipped</b>", "column": 0, "error": True}
    state = {
        "models": ["tiny-llama"],
        "params": {"tools": json.dumps([LOOKUP]), "tool_choice": "required"},
        "messages": [ASKED, CALLED, result],
    }
    conv_id = client.post("/playground/conversations", json=state).json()["id"]
    html = client.get(f"/playground?c={conv_id}").text
    assert '<div class="tool-call" data-call-id="call_7" data-name="lookup_order">' in html
    assert '<code class="tool-call-name">lookup_order</code>' in html
    assert "{\n  &#34;order_id&#34;: &#34;A17&#34;\n}" in html  # arguments pretty-printed
    assert 'data-tool-call-id="call_7"' in html and "tool result (error)" in html
    assert "&lt;b&gt;shipped&lt;/b&gt;" in html and "<b>shipped</b>" not in html
    assert '<option value="required" selected>' in html
    assert 'hx-swap="innerHTML">[\n  {\n    &#34;type&#34;: &#34;function&#34;,' in html  # the editor holds the tools
    assert "/playground/tools-check" in html


def test_save_as_example_keeps_tools_calls_and_results_and_the_example_validates(pg):
    client, app, _ = pg
    with Session(app.state.engine) as s:
        dataset = Dataset(name="Support bot")
        s.add(dataset)
        s.commit()
        dataset_id = dataset.id
    messages = [
        ASKED,
        CALLED,
        {"role": "tool", "tool_call_id": "call_7", "content": '{"status": "shipped"}', "column": 0},
        {"role": "assistant", "content": "It shipped.", "column": 0},
    ]
    form = {
        "dataset_id": dataset_id,
        "messages": json.dumps(messages),
        "reply": "Order A17 has shipped.",
        "system": "You help with orders.",
        "column": 0,
        "tools": json.dumps([LOOKUP]),
    }
    html = client.post("/playground/save-example", data=form, headers={"HX-Request": "true"}).text
    assert 'data-valid="true"' in html, html
    with Session(app.state.engine) as s:
        example = s.exec(select(Example).where(Example.dataset_id == dataset_id)).one()
        record = example.to_record()
    assert record["tools"] == [TOOL]
    assert record["messages"] == [
        {"role": "system", "content": "You help with orders."},
        {"role": "user", "content": "Where is A17?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_7"},
        {"role": "assistant", "content": "Order A17 has shipped."},
    ]


def test_the_script_draws_cards_and_asks_for_results(pg):
    client, _, _ = pg
    script = client.get("/static/playground.js").text
    assert "tool-call-args" in script and "the tool failed" in script and "Continue" in script
