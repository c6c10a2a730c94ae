"""/v1/chat/completions with tools, over a scripted engine: the answers' shapes (whole and streamed) as OpenAI's
schemas and SDK read them, and what reaches the engine (ChatParams, messages with calls and results)."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support.openai_chat_schemas import validate
from tests.support.scripted_chat import ScriptedChatEngine, call_chunks

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by its id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    },
    {"type": "function", "function": {"name": "track_shipment", "parameters": {"type": "object", "properties": {}}}},
]
QUESTION = [{"role": "user", "content": "Where are orders A17 and B2?"}]
TWO_CALLS = call_chunks(("lookup_order", {"order_id": "A17"}), ("track_shipment", {"order_id": "B2"}))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def scripted(tmp_path, tiny_model):
    """A live server whose chat engine answers from a script: (server, engine)."""
    settings = make_settings(tmp_path / "data", local_models={"tiny-llama": tiny_model})
    upgrade(settings)
    app = create_app(settings)
    engine = ScriptedChatEngine(TWO_CALLS)
    app.state.chat_engine = engine
    with LiveServer(app, free_port()) as live:
        yield live, engine


def post(server, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


def sse(response: httpx.Response) -> list:
    return [
        json.loads(line[6:])
        for line in response.text.splitlines()
        if line.startswith("data: ") and "[DONE]" not in line
    ]


def test_a_whole_answer_carries_the_calls_with_null_content_as_openais_schema_says(scripted):
    server, _ = scripted
    raw = post(server, {"model": "tiny-llama", "messages": QUESTION, "tools": TOOLS})
    assert raw.status_code == 200, raw.text
    body = validate("CreateChatCompletionResponse", raw.json())
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["lookup_order", "track_shipment"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"order_id": "A17"}, {"order_id": "B2"}]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert body["usage"]["total_tokens"] == 21


def test_streamed_calls_come_as_openais_deltas_and_add_up_to_the_whole_answer(scripted):
    server, _ = scripted
    raw = post(server, {"model": "tiny-llama", "messages": QUESTION, "tools": TOOLS, "stream": True})
    chunks = [validate("CreateChatCompletionStreamResponse", chunk) for chunk in sse(raw)]
    deltas = [d for c in chunks for d in (c["choices"][0]["delta"].get("tool_calls") or [])]
    firsts = [d for d in deltas if "id" in d]
    assert [(d["index"], d["type"], d["function"]["name"]) for d in firsts] == [
        (0, "function", "lookup_order"),
        (1, "function", "track_shipment"),
    ]
    # A call's later deltas carry only its index and a piece of the arguments.
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in deltas if "id" not in d)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    whole = post(server, {"model": "tiny-llama", "messages": QUESTION, "tools": TOOLS}).json()
    joined = ["".join(d["function"]["arguments"] for d in deltas if d["index"] == i) for i in (0, 1)]
    assert joined == [c["function"]["arguments"] for c in whole["choices"][0]["message"]["tool_calls"]]


def test_the_sdk_reads_calls_whole_and_streamed(scripted):
    server, _ = scripted
    with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
        whole = client.chat.completions.create(model="tiny-llama", messages=QUESTION, tools=TOOLS)
        with client.chat.completions.stream(model="tiny-llama", messages=QUESTION, tools=TOOLS) as stream:
            streamed = stream.get_final_completion()
    assert whole.choices[0].finish_reason == streamed.choices[0].finish_reason == "tool_calls"
    pairs = [(c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls]
    assert pairs == [(c.function.name, c.function.arguments) for c in streamed.choices[0].message.tool_calls]


def test_tools_choice_parallel_and_response_format_reach_the_engine_checked(scripted):
    server, engine = scripted
    body = {
        "model": "tiny-llama",
        "messages": QUESTION,
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "lookup_order"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    }
    assert post(server, body).status_code == 200
    params = engine.asked[-1][2]
    assert params.tools == TOOLS
    assert params.tool_choice == {"type": "function", "function": {"name": "lookup_order"}}
    assert params.parallel_tool_calls is False
    assert params.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "strict": False, "schema": {"type": "object"}},
    }
    assert post(server, {"model": "tiny-llama", "messages": QUESTION, "tools": TOOLS}).status_code == 200
    params = engine.asked[-1][2]
    assert (params.tool_choice, params.parallel_tool_calls, params.response_format) == ("auto", True, None)
    assert post(server, {"model": "tiny-llama", "messages": QUESTION}).status_code == 200
    assert (engine.asked[-1][2].tools, engine.asked[-1][2].tool_choice) == (None, None)


def test_calls_and_results_sent_back_reach_the_engine_with_the_function_named(scripted):
    server, engine = scripted
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "A17"}'},
    }
    messages = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
    ]
    assert post(server, {"model": "tiny-llama", "messages": messages, "tools": TOOLS}).status_code == 200
    seen = engine.asked[-1][1]
    assert seen[1] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert seen[2] == {
        "role": "tool",
        "content": '{"status": "shipped"}',
        "tool_call_id": "call_1",
        "name": "lookup_order",
    }


def test_text_answers_still_match_openais_schemas(scripted):
    server, engine = scripted
    engine.scripts = [call_chunks(text="Hello")]
    body = validate("CreateChatCompletionResponse", post(server, {"model": "tiny-llama", "messages": QUESTION}).json())
    assert body["choices"][0]["message"]["content"] == "Hello" and "tool_calls" not in body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "stop"
    options = {"include_usage": True}
    raw = post(server, {"model": "tiny-llama", "messages": QUESTION, "stream": True, "stream_options": options})
    for chunk in sse(raw):
        validate("CreateChatCompletionStreamResponse", chunk)


def test_text_before_calls_keeps_its_content(scripted):
    server, engine = scripted
    engine.scripts = [call_chunks(("lookup_order", {"order_id": "A17"}), text="Let me check.")]
    message = post(server, {"model": "tiny-llama", "messages": QUESTION, "tools": TOOLS}).json()["choices"][0][
        "message"
    ]
    assert message["content"] == "Let me check." and message["tool_calls"][0]["function"]["name"] == "lookup_order"
