"""The tool format: definitions, calls and results rendered for the model, and calls parsed back from its text."""

from __future__ import annotations

import json
import re

import pytest

from app.engine import tool_format as tf
from app.engine.tokenizer import load_tokenizer, render_chat
from tests.engine.tool_templates import tools_tokenizer

CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}
CANCEL = {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}}


def _call(call_id: str, name: str, arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


CHAT = [
    {"role": "system", "content": "Be nice."},
    {"role": "user", "content": "where are 123 and 124?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            _call("c1", "lookup_order", '{"order_id": "123"}'),
            _call("c2", "lookup_order", {"order_id": "124"}),  # datasets sometimes hold the object itself
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    {"role": "tool", "tool_call_id": "c2", "content": "pending"},
    {"role": "assistant", "content": "123 shipped, 124 pending."},
]


def test_the_fallback_puts_definitions_before_the_system_message(tiny_model_dir):
    text = tf.render_chat(load_tokenizer(tiny_model_dir), CHAT, tools=[LOOKUP, CANCEL], add_generation_prompt=False)
    system = text.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system\n" + tf.FALLBACK_INSTRUCTIONS + "\n<tools>\n")
    assert f"<tools>\n{json.dumps(LOOKUP)}\n{json.dumps(CANCEL)}\n</tools>\n\nBe nice." in system


def test_the_fallback_adds_a_system_turn_when_there_is_none(tiny_model_dir):
    messages = [{"role": "user", "content": "hi"}]
    text = tf.render_chat(load_tokenizer(tiny_model_dir), messages, tools=[LOOKUP], add_generation_prompt=True)
    assert text == (
        f"<|im_start|>system\n{tf.tools_text([LOOKUP])}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_parallel_calls_follow_the_content_one_tag_each(tiny_model_dir):
    text = render_chat(load_tokenizer(tiny_model_dir), CHAT, tools=[LOOKUP])
    assert (
        "<|im_start|>assistant\nChecking.\n"
        '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "123"}}</tool_call>\n'
        '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "124"}}</tool_call><|im_end|>'
    ) in text


def test_consecutive_tool_results_share_one_user_turn_named_by_their_call(tiny_model_dir):
    text = render_chat(load_tokenizer(tiny_model_dir), CHAT, tools=[LOOKUP])
    assert (
        "<|im_start|>user\n"
        '<tool_response>{"name": "lookup_order", "content": "shipped"}</tool_response>\n'
        '<tool_response>{"name": "lookup_order", "content": "pending"}</tool_response><|im_end|>'
    ) in text


def test_calls_without_content_render_only_the_tags():
    message = {"role": "assistant", "content": None, "tool_calls": [_call("x", "cancel_order", "{}")]}
    assert tf.assistant_text(message) == '<tool_call>{"name": "cancel_order", "arguments": {}}</tool_call>'


def test_a_template_that_takes_tools_renders_natively(tiny_model_dir):
    tokenizer = tools_tokenizer(tiny_model_dir)
    assert tf.takes_tools(tokenizer) and not tf.takes_tools(load_tokenizer(tiny_model_dir))
    text = render_chat(tokenizer, CHAT, tools=[LOOKUP])
    assert "# Tools" in text and json.dumps(LOOKUP) in text
    assert '<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "124"}}\n</tool_call>' in text
    assert "<tool_response>\nshipped\n</tool_response>" in text
    assert tf.FALLBACK_INSTRUCTIONS not in text


def test_native_rendering_of_calls_without_ids_is_the_same_every_time():
    message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}
    first, second = tf.native_messages([message]), tf.native_messages([message])
    assert first == second and len(first[0]["tool_calls"][0]["id"]) == 9


def test_chats_without_tools_render_as_before(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}, {"role": "assistant", "content": "yo"}]
    assert render_chat(tokenizer, messages) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"


@pytest.mark.parametrize("arguments", ['{"order_id": "123", "note": "ça"}', '{"order_id":"123","note":"ça"}', "{}"])
def test_parse_of_a_rendered_call_gives_the_call_back(arguments):
    call = _call("call_abc", "lookup_order", arguments)
    content, calls = tf.parse_tool_calls(tf.assistant_text({"role": "assistant", "tool_calls": [call]}))
    assert content == ""
    (parsed,) = calls
    assert CALL_ID.match(parsed["id"])
    assert parsed["type"] == "function" and parsed["function"]["name"] == "lookup_order"
    assert json.loads(parsed["function"]["arguments"]) == json.loads(arguments)


def test_parallel_calls_and_the_content_before_them_are_parsed():
    message = {"role": "assistant", "content": "Let me check.", "tool_calls": CHAT[2]["tool_calls"]}
    content, calls = tf.parse_tool_calls(tf.assistant_text(message))
    assert content == "Let me check."
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"order_id": "123"}, {"order_id": "124"}]
    assert len({c["id"] for c in calls}) == 2


def test_qwen_style_calls_with_newlines_inside_the_tags_parse():
    text = 'Sure.\n<tool_call>\n{"name": "cancel_order", "arguments": {"id": 5}}\n</tool_call>'
    assert tf.parse_tool_calls(text)[1][0]["function"] == {"name": "cancel_order", "arguments": '{"id": 5}'}


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>{not json}</tool_call>",
        '<tool_call>{"name": "x", "arguments": [1]}</tool_call>',
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "x", "arguments": {}}',
        "just text about <tool_call> tags",
    ],
)
def test_malformed_tags_stay_in_the_content(text):
    assert tf.parse_tool_calls(text) == (text, [])


def test_a_malformed_tag_beside_a_good_one_stays_as_written():
    good = tf.format_call("cancel_order", {"id": 1})
    content, calls = tf.parse_tool_calls(f"<tool_call>oops</tool_call>\n{good}")
    assert content == "<tool_call>oops</tool_call>" and len(calls) == 1


def test_mistral_and_llama_native_calls_parse():
    _, calls = tf.parse_tool_calls('[TOOL_CALLS][{"name": "cancel_order", "arguments": {"id": 1}}]')
    assert calls[0]["function"]["name"] == "cancel_order"
    llama = '{"name": "cancel_order", "parameters": {"id": 1}}'
    assert tf.parse_tool_calls(llama) == (llama, [])  # a JSON answer is no call unless it names an offered tool
    content, calls = tf.parse_tool_calls(llama, names={"cancel_order"})
    assert content == "" and calls[0]["function"]["arguments"] == '{"id": 1}'
