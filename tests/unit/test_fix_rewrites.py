"""The bulk fixes' rewrites as pure functions: only what they name changes, and nothing is copied needlessly."""

from __future__ import annotations

import json

from app.datasets.fixes.bulk import fixed_columns
from app.datasets.fixes.catalog import FIXES
from app.datasets.fixes.masking import mask_messages, partly_hidden
from app.datasets.fixes.rewrites import string_tool_arguments, strip_trailing_whitespace
from app.tables.dataset import Example


def call(arguments) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}],
    }


def test_only_object_arguments_become_json_strings():
    messages = [call({"order_id": 7, "note": "café"}), call('{"a": 1}'), call([1, 2])]
    fixed = string_tool_arguments(messages)
    assert fixed is not None
    assert fixed[0]["tool_calls"][0]["function"]["arguments"] == '{"order_id": 7, "note": "café"}'
    assert fixed[1:] == messages[1:]  # a string stays; a list is not an object the fix knows how to read
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == {"order_id": 7, "note": "café"}  # not in place
    assert string_tool_arguments(messages[1:]) is None


def test_trailing_whitespace_leaves_leading_and_inner_space():
    messages = [{"role": "user", "content": "  two  words \n"}, {"role": "assistant", "content": None}]
    assert strip_trailing_whitespace(messages) == [
        {"role": "user", "content": "  two  words"},
        {"role": "assistant", "content": None},
    ]
    assert strip_trailing_whitespace([{"role": "user", "content": "clean"}]) is None


def test_masking_keeps_tool_arguments_parseable_and_previews_hide_the_value():
    messages = [{"role": "user", "content": "Mail ann.lee@acmecorp.io"}, call('{"to": "ann.lee@acmecorp.io"}')]
    masked = mask_messages(messages)
    assert masked is not None
    assert masked[0]["content"] == "Mail <EMAIL>"
    assert json.loads(masked[1]["tool_calls"][0]["function"]["arguments"]) == {"to": "<EMAIL>"}
    assert "ann.lee@acmecorp.io" not in partly_hidden("Mail ann.lee@acmecorp.io")
    assert mask_messages([{"role": "user", "content": "Nothing here."}]) is None


def test_a_preference_example_has_its_answers_fixed_too():
    example = Example(
        dataset_id=1,
        messages=[{"role": "user", "content": "Hi"}],
        preferred_output=[{"role": "assistant", "content": "Hello! "}],
        non_preferred_output=[{"role": "assistant", "content": "Hello."}],
    )
    assert fixed_columns(FIXES["trailing_whitespace"], example) == {
        "preferred_output": [{"role": "assistant", "content": "Hello!"}]
    }
