"""The tool_call_check grader: the right function called, its arguments equal, including or matching a schema."""

from __future__ import annotations

import json

import pytest

from app.errors import Invalid
from app.evals.graders import grade, grader_needs_model, make_sample, validate_grader
from app.evals.graders.tool_call_check import json_equal, json_subset

REFERENCE_CALL = {
    "id": "call_ref",
    "type": "function",
    "function": {"name": "lookup_order", "arguments": json.dumps({"order_id": "A17", "verbose": False})},
}
ITEM = {"question": "Where is A17?", "reference_tool_calls": [REFERENCE_CALL]}
FROM_ITEM = {
    "type": "tool_call_check",
    "name": "called lookup_order",
    "function": "{{item.reference_tool_calls.0.function.name}}",
    "arguments": {"mode": "equal", "reference": "{{item.reference_tool_calls.0.function.arguments}}"},
}
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[A-Z][0-9]+$"}, "verbose": {"type": "boolean"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


def call(name: str, arguments, call_id: str = "call_1") -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def run(config: dict, calls: list[dict], item: dict | None = None, text: str = ""):
    return grade(validate_grader(config, 0), item or ITEM, make_sample(text, calls, finish_reason="tool_calls"))


def test_the_same_call_as_the_reference_passes_and_the_details_say_what_was_called():
    result = run(FROM_ITEM, [call("lookup_order", {"verbose": False, "order_id": "A17"})])
    assert (result.passed, result.score, result.error, result.type) == (True, 1.0, None, "tool_call_check")
    assert result.details == {"function": "lookup_order", "called": ["lookup_order"]}
    assert grader_needs_model(validate_grader(FROM_ITEM, 0)) is None


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ([], "The answer made no tool call."),
        ([call("cancel_order", {"order_id": "A17", "verbose": False})], "it calls 'cancel_order', not 'lookup_order'"),
        ([call("lookup_order", {"order_id": "A18", "verbose": False})], "don't equal the reference"),
        ([call("lookup_order", {"order_id": "A17"})], "don't equal the reference"),  # a key short
        ([call("lookup_order", {"order_id": "A17", "verbose": 0})], "don't equal the reference"),  # 0 is not false
        ([call("lookup_order", "{order_id: A17}")], "its arguments are not JSON"),
    ],
)
def test_a_wrong_call_fails_saying_why(calls, reason):
    result = run(FROM_ITEM, calls)
    assert (result.passed, result.score, result.error) == (False, 0.0, None)
    assert reason in result.details["reason"]


def test_first_grades_the_first_call_and_any_looks_at_every_call():
    calls = [call("search_products", {"query": "mugs"}), call("lookup_order", {"order_id": "A17", "verbose": False})]
    assert run(FROM_ITEM, calls).passed is False
    assert "The first call fails: it calls 'search_products'" in run(FROM_ITEM, calls).details["reason"]
    assert run({**FROM_ITEM, "call": "any"}, calls).passed is True


def test_subset_allows_extra_keys_and_a_literal_reference():
    config = {
        "type": "tool_call_check",
        "name": "order id",
        "function": "lookup_order",
        "arguments": {"mode": "subset", "reference": {"order_id": "A17"}},
    }
    assert run(config, [call("lookup_order", {"order_id": "A17", "verbose": True})]).passed is True
    assert run(config, [call("lookup_order", {"id": "A17"})]).passed is False


def test_schema_mode_validates_the_arguments():
    config = {
        "type": "tool_call_check",
        "name": "well-formed",
        "function": "lookup_order",
        "arguments": {"mode": "schema", "schema": SCHEMA},
    }
    assert run(config, [call("lookup_order", {"order_id": "A17"})]).passed is True
    failed = run(config, [call("lookup_order", {"order_id": "a-17"})])
    assert failed.passed is False and "$.order_id" in failed.details["reason"]
    assert run(config, [call("lookup_order", {"order_id": "A1", "extra": 1})]).passed is False


def test_without_arguments_only_the_name_counts():
    config = {"type": "tool_call_check", "name": "picked the tool", "function": "lookup_order"}
    assert run(config, [call("lookup_order", "not even json")]).passed is True


def test_an_item_without_a_reference_is_an_error_not_a_failure():
    result = run(FROM_ITEM, [call("lookup_order", {})], item={"question": "no reference here"})
    assert result.error and "function name is empty" in result.error
    broken = {"question": "x", "reference_tool_calls": [call("lookup_order", "{broken")]}
    result = run(FROM_ITEM, [call("lookup_order", {})], item=broken)
    assert result.error == "The reference arguments are not JSON for this item."


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"type": "tool_call_check", "name": "x"}, "testing_criteria[0].function"),
        ({"type": "tool_call_check", "name": "x", "function": ""}, "testing_criteria[0].function"),
        ({"type": "tool_call_check", "name": "x", "function": "f", "call": "last"}, "testing_criteria[0].call"),
        ({"type": "tool_call_check", "name": "x", "function": "f", "extra": 1}, "testing_criteria[0].extra"),
        ({**FROM_ITEM, "arguments": {"mode": "close"}}, "testing_criteria[0].arguments.mode"),
        ({**FROM_ITEM, "arguments": {"mode": "equal"}}, "testing_criteria[0].arguments.reference"),
        ({**FROM_ITEM, "arguments": {"mode": "schema"}}, "testing_criteria[0].arguments.schema"),
        ({**FROM_ITEM, "arguments": {"mode": "schema", "schema": {"type": 3}}}, "testing_criteria[0].arguments.schema"),
        (
            {**FROM_ITEM, "arguments": {"mode": "schema", "schema": {"$ref": "https://example.com/s.json"}}},
            "testing_criteria[0].arguments.schema",
        ),
        ({**FROM_ITEM, "arguments": {"mode": "equal", "reference": "{}", "x": 1}}, "testing_criteria[0].arguments"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(config, param):
    with pytest.raises(Invalid) as info:
        validate_grader(config, 0)
    assert info.value.param == param


def test_json_equality_and_inclusion_follow_json_not_python():
    assert json_equal(1, 1.0) and not json_equal(True, 1) and not json_equal([1, 2], [2, 1])
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert json_subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not json_subset({"a": [1]}, {"a": [1, 2]})
