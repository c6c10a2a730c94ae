"""Tool calling and structured outputs through /v1 with the real openai SDK, on a live server and the local engine
(the tiny model): calls whose arguments match the schema, the same calls streamed, a conversation continued with a
`tool` message, json_schema answers that validate, and OpenAI's 400s for bad tools."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_v1_api import jsonl, upload
from tests.integration.test_v1_workflow import wait_for_job
from tests.support.openai_chat_schemas import validate

ORDER_ARGS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "enum": ["A17", "B2", "C9"]}, "urgent": {"type": "boolean"}},
    "required": ["order_id", "urgent"],
    "additionalProperties": False,
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its id.",
        "parameters": ORDER_ARGS,
        "strict": True,
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}}},
    },
}
TOOLS = [LOOKUP, WEATHER]
SCHEMAS = {"lookup_order": ORDER_ARGS, "get_weather": WEATHER["function"]["parameters"]}
QUESTION = [{"role": "user", "content": "Where is my order A17?"}]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    settings = make_settings(tmp_path_factory.mktemp("v1-tools") / "data", local_models={"tiny-llama": tiny_model})
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        yield live


@pytest.fixture
def client(server):
    with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as c:
        yield c


def assert_calls_match_their_schemas(calls) -> list[tuple[str, dict]]:
    """Each call names a declared function and its arguments parse and validate; (name, arguments) of each."""
    assert calls, "no tool calls"
    out = []
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, SCHEMAS[call.function.name])
        out.append((call.function.name, arguments))
    return out


def ask(client: OpenAI, **options):
    settings = {"messages": QUESTION, "temperature": 0, "seed": 3, "max_tokens": 120} | options
    return client.chat.completions.create(model="tiny-llama", **settings)


# The untrained tiny model, once it may call tools in parallel, goes on calling until max_tokens: one call at a
# time keeps its answers whole.
ONE_CALL = {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "lookup_order"}}])
def test_tools_answer_with_calls_whose_arguments_match_the_schema(client, choice):
    completion = ask(client, tools=TOOLS, tool_choice=choice, parallel_tool_calls=False)
    assert completion.choices[0].finish_reason == "tool_calls"
    message = completion.choices[0].message
    calls = assert_calls_match_their_schemas(message.tool_calls)
    if isinstance(choice, dict):
        assert {name for name, _ in calls} == {"lookup_order"}


def test_parallel_tool_calls_false_makes_at_most_one_call(client):
    assert len(ask(client, **ONE_CALL).choices[0].message.tool_calls) == 1
    several = ask(client, tools=TOOLS, tool_choice="required", max_tokens=200).choices[0].message.tool_calls
    assert len(several) > 1  # left to itself, this model calls again and again


def test_streaming_gives_the_same_calls_as_the_whole_answer(client):
    whole = ask(client, **ONE_CALL)
    stream = ask(client, **ONE_CALL, stream=True)
    deltas = [d for chunk in stream if chunk.choices for d in (chunk.choices[0].delta.tool_calls or [])]
    names = {d.index: d.function.name for d in deltas if d.id}
    arguments: dict[int, str] = {}
    for delta in deltas:
        arguments[delta.index] = arguments.get(delta.index, "") + (delta.function.arguments or "")
    streamed = [(names[i], arguments[i]) for i in sorted(arguments)]
    assert streamed == [(c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls]


def test_a_tool_message_continues_the_conversation(client):
    first = ask(client, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "lookup_order"}})
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *QUESTION,
        first.choices[0].message.model_dump(exclude_none=True),  # as OpenAI's own examples send it back
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"status": "shipped"})},
    ]
    after = ask(client, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=12)
    assert after.choices[0].message.tool_calls is None
    assert after.choices[0].finish_reason in ("stop", "length")
    assert after.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result were read


def test_response_format_json_schema_strict_answers_validate(client):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}, "sure": {"type": "boolean"}},
        "required": ["answer", "sure"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}}
    for seed in (1, 2, 3):
        completion = client.chat.completions.create(
            model="tiny-llama",
            messages=QUESTION,
            temperature=1.0,
            seed=seed,
            max_tokens=60,
            response_format=response_format,
        )
        jsonschema.validate(json.loads(completion.choices[0].message.content), schema)


def test_a_raw_tool_answer_matches_openais_schema(server):
    body = {"model": "tiny-llama", "messages": QUESTION, **ONE_CALL, "max_tokens": 120}
    raw = httpx.post(
        server.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    )
    validate("CreateChatCompletionResponse", raw.json())


CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "A17"}'}}
TOOL_REPLY = {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}


@pytest.mark.parametrize(
    ("options", "param", "code", "words"),
    [
        ({"tools": {"type": "function"}}, "tools", "invalid_type", "expected an array"),
        ({"tools": []}, "tools", "empty_array", "empty array"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type", "invalid_value", "Supported values are: 'function'"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", "missing_required_parameter", ""),
        (
            {"tools": [{"type": "function", "function": {"name": "look up"}}]},
            "tools[0].function.name",
            "invalid_value",
            "does not match pattern",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "x" * 65}}]},
            "tools[0].function.name",
            "string_above_max_length",
            "maximum length 64",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "none"}}]},
            "tools[0].function.parameters",
            "invalid_type",
            "expected an object",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "'type: \"object\"'",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 3}}}]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "Invalid schema for function 'f'",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object"}}}
                ]
            },
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "'additionalProperties' is required to be supplied and to be false",
        ),
        ({"tools": [LOOKUP, LOOKUP]}, "tools[1].function.name", "invalid_value", "two functions"),
        ({"tool_choice": "auto"}, "tool_choice", "invalid_value", "only allowed when 'tools' are specified"),
        (
            {"tools": TOOLS, "tool_choice": "sometimes"},
            "tool_choice",
            "invalid_value",
            "'none', 'auto', and 'required'",
        ),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "cancel_order"}}},
            "tool_choice.function.name",
            "invalid_value",
            "'cancel_order' is not among",
        ),
        ({"parallel_tool_calls": False}, "parallel_tool_calls", "invalid_value", "only allowed when 'tools'"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "invalid_value", "'json_schema', and 'text'"),
        (
            {"response_format": {"type": "json_schema"}},
            "response_format.json_schema",
            "missing_required_parameter",
            "",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "v", "strict": True, "schema": {"type": "object", "properties": {}}},
                }
            },
            "response_format.json_schema.schema",
            "invalid_json_schema",
            "'additionalProperties'",
        ),
        ({"response_format": {"type": "json_object"}}, "messages", None, "must contain the word 'json'"),
        (
            {"messages": [*QUESTION, {"role": "tool", "content": "shipped"}]},
            "messages[1].tool_call_id",
            "missing_required_parameter",
            "",
        ),
        ({"messages": [*QUESTION, TOOL_REPLY]}, "messages[1].role", None, "must be a response to a preceding"),
        (
            {"messages": [*QUESTION, {"role": "assistant", "tool_calls": [CALL]}, {"role": "user", "content": "hm"}]},
            "messages[1].role",
            None,
            "did not have response messages: call_1",
        ),
        (
            {
                "messages": [
                    *QUESTION,
                    {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]},
                    TOOL_REPLY,
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
            "invalid_type",
            "expected a string",
        ),
    ],
)
def test_bad_tools_are_refused_with_openais_400(client, options, param, code, words):
    options = {"messages": QUESTION, **options}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-llama", max_tokens=4, **options)
    body = info.value.body
    assert (body["param"], body["code"]) == (param, code or "invalid_request")
    assert words in body["message"]
    validate("ErrorResponse", info.value.response.json())


def order_example(n: int) -> dict:
    """A function-calling example: the user asks for an order, the model looks it up, then reports its status."""
    order_id = ["A17", "B2", "C9"][n % 3]
    call = {
        "id": f"call_{n}",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": json.dumps({"order_id": order_id, "urgent": n % 2 == 0})},
    }
    return {
        "tools": [LOOKUP],
        "messages": [
            {"role": "user", "content": f"Where is my order {order_id}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{n}", "content": json.dumps({"status": "shipped"})},
            {"role": "assistant", "content": f"Order {order_id} has shipped."},
        ],
    }


def train_and_call(client: OpenAI, model: str, n_train: int, hyperparameters: dict, timeout: float, choice) -> None:
    """Train on a small function-calling set, then call the tuned model with tools: calls that match the schema,
    the same streamed, and a `tool` message that continues the conversation."""
    train = upload(client, "orders.jsonl", jsonl([order_example(n) for n in range(n_train)]))
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=train.id,
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
    )
    done = wait_for_job(client, job.id, timeout)
    assert done.status == "succeeded", done.error
    tuned = done.fine_tuned_model
    options = {
        "model": tuned,
        "messages": QUESTION,
        "tools": [LOOKUP],
        "tool_choice": choice,
        "temperature": 0,
        "seed": 1,
    }
    whole = client.chat.completions.create(max_tokens=150, **options)
    assert whole.choices[0].finish_reason == "tool_calls", whole.choices[0].message
    calls = whole.choices[0].message.tool_calls
    assert [name for name, _ in assert_calls_match_their_schemas(calls)] == ["lookup_order"] * len(calls)
    with client.chat.completions.stream(max_tokens=150, **options) as stream:
        streamed = stream.get_final_completion().choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        (c.function.name, c.function.arguments) for c in calls
    ]
    messages = [
        *QUESTION,
        whole.choices[0].message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": json.dumps({"status": "shipped"})} for c in calls),
    ]
    after = client.chat.completions.create(model=tuned, messages=messages, tools=[LOOKUP], max_tokens=16, temperature=0)
    assert after.choices[0].finish_reason in ("stop", "length", "tool_calls")


@pytest.mark.slow
def test_a_model_tuned_on_function_calls_answers_with_calls(tmp_path, tiny_model):
    settings = make_settings(
        tmp_path / "data", embedded_worker=True, worker_poll_seconds=0.1, local_models={"tiny-llama": tiny_model}
    )
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        with OpenAI(base_url=live.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            train_and_call(
                client,
                "tiny-llama",
                12,
                {"n_epochs": 10, "batch_size": 4, "learning_rate_multiplier": 10},
                240,
                "required",
            )
