"""Tool calling through the OpenAI provider (the real SDK against the stand-in server): tools, tool_choice,
parallel_tool_calls and response_format go to OpenAI as sent; its streamed tool-call deltas come back as
ChatChunk.tool_calls, and /v1 serves them as OpenAI did."""

from __future__ import annotations

import json

import pytest
from openai import OpenAI

from app.engine.chat_types import ChatParams
from app.main import create_app
from app.providers.registry import get_provider
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app

MODEL = "gpt-4o-mini-2024-07-18"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_products",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    },
    {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object", "properties": {}}}},
]
QUESTION = [{"role": "user", "content": "blue mugs"}]


@pytest.fixture(scope="module")
def fake():
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


def provider(settings, fake):
    return get_provider("openai", settings, api_key=KEY, base_url=fake.url + "/v1", max_retries=0)


def test_tool_parameters_pass_through_and_call_deltas_come_back(tmp_path, fake):
    settings = make_settings(tmp_path / "data")
    params = ChatParams(
        temperature=0,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "lookup_order"}},
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    call = {"id": "call_0", "type": "function", "function": {"name": "search_products", "arguments": "{}"}}
    messages = [
        *QUESTION,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "[]", "name": "search_products"},
        {"role": "user", "content": "and my order?"},
    ]
    with provider(settings, fake) as openai_provider:
        chunks = list(openai_provider.stream_chat(MODEL, messages, params))
    sent = fake.state.chats[-1]
    assert sent["tools"] == TOOLS and sent["tool_choice"] == params.tool_choice
    assert sent["parallel_tool_calls"] is False and sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [call]}  # calls only: null
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_0", "content": "[]"}  # no name
    deltas = [d for c in chunks for d in (c.tool_calls or [])]
    assert deltas[0] == {
        "index": 0,
        "id": "call_fake1",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": ""},
    }
    assert "".join(d["function"]["arguments"] for d in deltas) == json.dumps({"query": "and my order?"})
    assert all(set(d) == {"index", "function"} for d in deltas[1:])
    assert (chunks[-1].finish_reason, chunks[-1].usage["total_tokens"]) == ("tool_calls", 15)


def test_without_tools_nothing_of_them_is_sent(tmp_path, fake):
    with provider(make_settings(tmp_path / "data"), fake) as openai_provider:
        text = "".join(c.text for c in openai_provider.stream_chat(MODEL, QUESTION, ChatParams()))
    assert text == f"Hello from {MODEL}"
    assert not {"tools", "tool_choice", "parallel_tool_calls", "response_format"} & set(fake.state.chats[-1])


def test_v1_serves_an_openai_models_calls_as_openai_made_them(tmp_path, fake):
    settings = make_settings(tmp_path / "data", openai_api_key=KEY, openai_base_url=fake.url + "/v1")
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        with OpenAI(base_url=live.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            whole = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=TOOLS)
            with client.chat.completions.stream(model=MODEL, messages=QUESTION, tools=TOOLS) as stream:
                streamed = stream.get_final_completion()
    for completion in (whole, streamed):
        (call,) = completion.choices[0].message.tool_calls
        assert (call.id, call.function.name) == ("call_fake1", "search_products")
        assert json.loads(call.function.arguments) == {"query": "blue mugs"}
        assert completion.choices[0].finish_reason == "tool_calls"
