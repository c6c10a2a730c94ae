"""Constrained decoding (issue #22): JSON answers and tool calls that parse and match their schema every time.

The tiny model's random weights write garbage, which is what shows the grammar at work: whatever the model would
have said, the reply is valid JSON of the schema, or well-formed calls of the offered functions.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from app.engine import decoder_parts
from app.engine.call_reader import CallReader, read_calls
from app.engine.chat_types import ChatParams, ModelRef
from app.engine.constrained import Grammars, json_safe, plan
from app.engine.inference import ChatEngine
from app.errors import Invalid
from tests.engine.conftest import TINY

REF = ModelRef(TINY, TINY)
HI = [{"role": "user", "content": "Hello there"}]
# Every part bounded (lengths, items, ranges), so that a random walk through the grammar ends within max_tokens.
ANSWER = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "color": {"enum": ["red", "green", "blue"]},
        "flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
        "size": {"type": "object", "properties": {"w": {"type": "integer", "minimum": 1, "maximum": 9}}},
    },
    "required": ["name", "age", "color", "flags", "size"],
    "additionalProperties": False,
}
STRICT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER, "strict": True}}
ORDER = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "maxLength": 6}, "urgent": {"type": "boolean"}},
    "required": ["order_id", "urgent"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Rome", "Oslo"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "lookup_order", "description": "Find an order", "parameters": ORDER}},
    {"type": "function", "function": {"name": "get_weather", "description": "Forecast", "parameters": WEATHER}},
]
SCHEMAS = {"lookup_order": ORDER, "get_weather": WEATHER}


def _stream(engine: ChatEngine, params: ChatParams, messages=HI) -> tuple[str, list[dict], str]:
    """A streamed reply: its content, its calls assembled from the deltas, its finish_reason."""
    text, calls, finish = "", [], None
    for chunk in engine.stream_chat(REF, messages, params):
        text += chunk.text
        for delta in chunk.tool_calls or []:
            if delta["index"] == len(calls):
                assert delta["id"].startswith("call_") and len(delta["id"]) == 29 and delta["type"] == "function"
                calls.append({"id": delta["id"], "name": delta["function"]["name"], "arguments": ""})
            assert delta["index"] == len(calls) - 1  # calls come one after the other
            calls[-1]["arguments"] += delta["function"]["arguments"]
        finish = chunk.finish_reason or finish
    return text, calls, finish


def _valid_call(name: str, arguments: str) -> None:
    jsonschema.validate(json.loads(arguments), SCHEMAS[name])


def test_strict_json_schema_answers_at_temperature_one_always_validate(tiny_chat):
    for seed in range(12):
        text, calls, finish = _stream(
            tiny_chat, ChatParams(temperature=1.0, max_tokens=200, seed=seed, response_format=STRICT)
        )
        assert finish == "stop" and not calls
        jsonschema.validate(json.loads(text), ANSWER)  # json.loads refuses raw control characters too
    replies = tiny_chat.generate_batch(
        REF, [HI] * 12, ChatParams(temperature=1.0, max_tokens=200, response_format=STRICT)
    )
    for reply in replies:
        assert reply.finish_reason == "stop" and reply.tool_calls is None
        jsonschema.validate(json.loads(reply.text), ANSWER)


def test_a_non_strict_schema_is_still_followed(tiny_chat):
    loose = {k: v for k, v in ANSWER.items() if k != "additionalProperties"}
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": loose}}
    # Extra properties are allowed, and a random walk may add many: only the replies that ended are whole.
    params = ChatParams(temperature=1.0, max_tokens=400, response_format=response_format)
    replies = tiny_chat.generate_batch(REF, [HI] * 8, params)
    done = [r for r in replies if r.finish_reason == "stop"]
    assert len(done) >= 2
    for reply in done:
        jsonschema.validate(json.loads(reply.text), loose)


def test_json_object_answers_are_json_objects(tiny_chat):
    # Any JSON object: a random walk may nest without end, so only the replies that ended are whole.
    params = ChatParams(temperature=1.0, max_tokens=300, response_format={"type": "json_object"})
    replies = tiny_chat.generate_batch(REF, [HI] * 12, params)
    done = [r for r in replies if r.finish_reason == "stop"]
    assert len(done) >= 6
    assert all(isinstance(json.loads(r.text), dict) for r in done)
    assert all(r.text.lstrip().startswith("{") for r in replies)


def test_required_tool_choice_without_parallel_calls_makes_exactly_one_valid_call(tiny_chat):
    for seed in range(6):
        params = ChatParams(
            temperature=1.0, max_tokens=120, seed=seed, tools=TOOLS, tool_choice="required", parallel_tool_calls=False
        )
        text, calls, finish = _stream(tiny_chat, params)
        assert (text, finish, len(calls)) == ("", "tool_calls", 1)
        _valid_call(calls[0]["name"], calls[0]["arguments"])


def test_required_tool_choice_calls_parse_also_in_parallel(tiny_chat):
    params = ChatParams(temperature=1.0, max_tokens=150, tools=TOOLS, tool_choice="required")
    replies = tiny_chat.generate_batch(REF, [HI] * 6, params)
    for reply in replies:
        assert reply.text == "" and reply.tool_calls and reply.finish_reason in ("tool_calls", "length")
        for call in reply.tool_calls:
            assert call["type"] == "function" and call["id"].startswith("call_")
            _valid_call(call["function"]["name"], call["function"]["arguments"])


def test_a_named_function_is_the_only_one_called(tiny_chat):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    for seed in range(4):
        params = ChatParams(temperature=1.0, max_tokens=120, seed=seed, tools=TOOLS, tool_choice=choice)
        _, calls, _ = _stream(tiny_chat, params)
        assert calls and {c["name"] for c in calls} == {"get_weather"}
        for call in calls[:-1] if len(calls) > 1 else calls:
            _valid_call(call["name"], call["arguments"])


def test_tool_choice_none_makes_no_call(tiny_chat):
    for seed in range(4):
        params = ChatParams(temperature=1.0, max_tokens=60, seed=seed, tools=TOOLS, tool_choice="none")
        text, calls, finish = _stream(tiny_chat, params)
        assert not calls and finish in ("stop", "length") and "<tool_call>" not in text


def test_auto_tool_choice_gives_text_or_calls_that_parse(tiny_chat):
    params = ChatParams(temperature=1.0, max_tokens=80, tools=TOOLS, parallel_tool_calls=False)
    for reply in tiny_chat.generate_batch(REF, [HI] * 6, params):
        assert reply.finish_reason in ("stop", "length", "tool_calls")
        assert "<tool_call>" not in reply.text
        for call in reply.tool_calls or []:
            _valid_call(call["function"]["name"], call["function"]["arguments"])


def test_streamed_calls_are_the_batch_calls_for_the_same_seed(tiny_chat):
    for seed in (3, 4):
        params = ChatParams(temperature=1.0, max_tokens=150, seed=seed, tools=TOOLS, tool_choice="required")
        text, calls, finish = _stream(tiny_chat, params)
        [reply] = tiny_chat.generate_batch(REF, [HI], params)
        assert (reply.text, reply.finish_reason) == (text, finish)
        batch = [(c["function"]["name"], c["function"]["arguments"]) for c in reply.tool_calls or []]
        assert batch == [(c["name"], c["arguments"]) for c in calls][: len(batch)] and batch


def test_the_hf_forward_decodes_under_the_grammar_too(tiny_model_dir, tiny_settings, monkeypatch):
    monkeypatch.setattr(decoder_parts, "supports", lambda model: False)
    with ChatEngine(tiny_settings) as engine:
        assert engine.get_model(REF).decoder is None
        for seed in range(2):
            params = ChatParams(temperature=1.0, max_tokens=200, seed=seed, response_format=STRICT)
            text, _, finish = _stream(engine, params)
            assert finish == "stop"
            jsonschema.validate(json.loads(text), ANSWER)
        params = ChatParams(
            temperature=1.0, max_tokens=120, tools=TOOLS, tool_choice="required", parallel_tool_calls=False
        )
        for reply in engine.generate_batch(REF, [HI] * 2, params):
            assert reply.finish_reason == "tool_calls" and len(reply.tool_calls) == 1
            call = reply.tool_calls[0]["function"]
            _valid_call(call["name"], call["arguments"])


def test_malformed_constraints_are_refused_before_decoding(tiny_chat):
    for params, param in [
        (ChatParams(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice"),
        (ChatParams(tool_choice="required"), "tool_choice"),
        (ChatParams(tools=TOOLS, tool_choice={"type": "function", "function": "get_weather"}), "tool_choice"),
        (ChatParams(tools=TOOLS, tool_choice="sometimes"), "tool_choice"),
        (ChatParams(tools=[{"type": "function", "function": {}}]), "tools"),
        (ChatParams(response_format={"type": "yaml"}), "response_format"),
        (ChatParams(response_format={"type": "json_schema", "json_schema": {"name": "x"}}), "response_format"),
    ]:
        with pytest.raises(Invalid) as caught:
            list(tiny_chat.stream_chat(REF, HI, params))
        assert caught.value.param == param
        with pytest.raises(Invalid):
            tiny_chat.generate_batch(REF, [HI], params)


def test_plans_and_their_grammars(tiny_chat):
    assert plan(ChatParams()) is None
    assert plan(ChatParams(response_format={"type": "text"})) is None
    assert plan(ChatParams(tools=TOOLS, tool_choice="none")).reads_calls is False
    assert plan(ChatParams(tools=TOOLS)).reads_calls is True
    loaded = tiny_chat.get_model(REF)
    grammars = Grammars(size=2)

    def matches(params: ChatParams, text: str) -> bool:
        compiled = grammars.compile(loaded.tokenizer, loaded.vocab_size, loaded.eos_ids, plan(params))
        matcher = compiled.guide().matcher
        return matcher.accept_string(text) and matcher.is_completed()

    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome", "days": 2}}</tool_call>'
    qwen = '<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "A1", "urgent": true}}\n</tool_call>'
    auto, single = ChatParams(tools=TOOLS), ChatParams(tools=TOOLS, parallel_tool_calls=False)
    assert matches(auto, "Let me check." + call + "\n" + qwen)
    assert matches(auto, "Just text")
    assert not matches(auto, call.replace('"Rome"', '"Lima"'))
    assert not matches(single, call + "\n" + call)
    required = ChatParams(tools=TOOLS, tool_choice="required")
    assert matches(required, call + "\n" + qwen)
    assert not matches(required, "Sure." + call)
    assert not matches(required, "")
    named = ChatParams(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "lookup_order"}})
    assert matches(named, qwen) and not matches(named, call)
    assert not matches(ChatParams(tools=TOOLS, tool_choice="none"), call)
    assert matches(ChatParams(tools=TOOLS, response_format=STRICT), call)  # auto + a schema: calls or the answer
    answer = '{"name": "Ann", "age": 3, "color": "red", "flags": [], "size": {"w": 2}}'
    assert matches(ChatParams(response_format=STRICT), answer)
    assert not matches(ChatParams(response_format=STRICT), answer[:-1] + ', "extra": 1}')
    loose = {
        "type": "json_schema",
        "json_schema": {"schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
    }
    assert matches(ChatParams(response_format=loose), '{"a": 1, "b": 2}')
    assert len(grammars._compiled) == 2  # an LRU: the last two compiled


def test_bounded_strings_become_patterns_without_control_characters():
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "maxLength": 4}},
        "enum": [{"type": "string", "maxLength": 1}],
    }
    safe = json_safe(schema)
    assert safe["properties"]["s"] == {"type": "string", "pattern": '^[^"\\\\\\x00-\\x1f]{0,4}$'}
    assert safe["enum"] == schema["enum"]  # data, not a schema
    jsonschema.validate("abcd", safe["properties"]["s"])
    for bad in ("a\nb", "abcde"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, safe["properties"]["s"])


def test_the_call_reader_streams_what_it_reads_at_once():
    text = (
        'Checking now.  \n<tool_call>{"name": "lookup_order", '
        '"arguments": {"order_id": "}</tool_call>", "n": [1, {"a": 2}]}}'
        '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"} }\n</tool_call>\n'
    )
    content, calls = read_calls(text)
    assert content == "Checking now."
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("lookup_order", {"order_id": "}</tool_call>", "n": [1, {"a": 2}]}),
        ("get_weather", {"city": "Rome"}),
    ]
    for step in (1, 2, 5):
        reader, streamed, arguments = CallReader(), "", {}
        for end in range(0, len(text) + 1, step):
            piece, deltas = reader.feed(text[:end])
            streamed += piece
            for delta in deltas:
                arguments[delta["index"]] = arguments.get(delta["index"], "") + delta["function"]["arguments"]
        reader.feed(text)
        streamed += reader.finish()
        assert streamed == content
        assert [arguments[i] for i in sorted(arguments)] == [c["function"]["arguments"] for c in calls]
    content, calls = read_calls('Hello <tool_call>{"name": "f", "arguments": {"a": ')
    assert (content, calls) == ("Hello", [])  # a call cut off is no call
    assert read_calls("a < b <tool")[0] == "a < b <tool"


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "color": {"enum": ["red", "green", "blue", "yellow"]},
        "hobbies": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 16}, "maxItems": 3},
        "student": {"type": "boolean"},
    },
    "required": ["name", "age", "color", "hobbies", "student"],
    "additionalProperties": False,
}


@pytest.mark.smollm
@pytest.mark.slow
def test_fifty_strict_answers_of_the_base_smollm2_at_temperature_one_all_validate(settings):
    """Acceptance (issue #22): response_format json_schema with strict, 50 answers of the base SmolLM2."""
    from app.engine.catalog import SMOLLM2

    ref = ModelRef(SMOLLM2, SMOLLM2)
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    question = "Invent a person: their name, age, favourite color, hobbies, and whether they are a student."
    params = ChatParams(temperature=1.0, max_tokens=192, response_format=response_format)
    with ChatEngine(settings) as engine:
        replies = engine.generate_batch(ref, [[{"role": "user", "content": question}]] * 45, params)
        answers = [(reply.text, reply.finish_reason) for reply in replies]
        for _ in range(5):  # and streamed
            streamed = list(engine.stream_chat(ref, [{"role": "user", "content": question}], params))
            answers.append(("".join(chunk.text for chunk in streamed), streamed[-1].finish_reason))
    assert len(answers) == 50
    for text, finish in answers:
        assert finish == "stop", text
        jsonschema.validate(json.loads(text), PERSON)
    assert len({text for text, _ in answers}) > 25  # sampled, not one answer repeated
