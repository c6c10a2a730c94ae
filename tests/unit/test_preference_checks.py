"""Preference (DPO) examples: each of OpenAI's rules for the shape, with a case that breaks it and one that keeps it."""

from __future__ import annotations

import copy

import pytest

from app.datasets.validation import apply_check, check_record
from app.datasets.validation.codes import CODES
from app.datasets.validation.preference import (
    check_preference,
    is_preference_record,
    pair_hash,
    pair_search_text,
)
from app.tables.dataset import Example

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
GOOD = {
    "input": {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    },
    "preferred_output": [{"role": "assistant", "content": "18C and sunny in Paris."}],
    "non_preferred_output": [{"role": "assistant", "content": "Weather is a thing."}],
}
SIMPLE = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello! How can I help?"}],
    "non_preferred_output": [{"role": "assistant", "content": "what"}],
}


def variant(change) -> dict:
    """A deep copy of GOOD after `change(record)` (or what it returns)."""
    record = copy.deepcopy(GOOD)
    result = change(record)
    return record if result is None else result


def codes(record) -> set[str]:
    return {p.code for p in check_record(record).problems}


# Each preference rule (and the chat rules that apply to its input and answers): a change of GOOD that breaks it.
PREFERENCE_TRIGGERS = {
    "preference_missing_input": lambda r: r.pop("input") and None,
    "preference_missing_output": lambda r: r.pop("non_preferred_output") and None,
    "preference_output_not_single": lambda r: r["preferred_output"].append({"role": "assistant", "content": "More."}),
    "preference_output_not_assistant": lambda r: r["preferred_output"][0].update(role="user"),
    "preference_output_missing_content": lambda r: r["non_preferred_output"][0].update(content="  "),
    "input_last_message_not_user": lambda r: r["input"]["messages"].append({"role": "assistant", "content": "Hm."}),
    "preference_outputs_identical": lambda r: r.update(non_preferred_output=copy.deepcopy(r["preferred_output"])),
}
# Chat rules that the input's messages and the answers still follow.
SHARED_TRIGGERS = {
    "unrecognized_role": lambda r: r["input"]["messages"][0].update(role="robot"),
    "missing_content": lambda r: r["input"]["messages"][1].update(content=""),
    "invalid_tools": lambda r: r["input"].update(tools={"get_weather": {}}),
    "message_unrecognized_key": lambda r: r["preferred_output"][0].update(mood="happy"),
    "invalid_tool_calls": lambda r: r["preferred_output"][0].update(tool_calls=[{"type": "function"}]),
    "invalid_tool_arguments": lambda r: r["preferred_output"][0].update(
        tool_calls=[{**CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    ),
    "undeclared_function": lambda r: r["preferred_output"][0].update(
        tool_calls=[{**CALL, "function": {"name": "get_time", "arguments": "{}"}}]
    ),
}


def test_the_reference_pairs_have_no_problem_at_all():
    assert check_record(GOOD).problems == []
    assert check_record(SIMPLE).problems == []


@pytest.mark.parametrize("code", sorted(PREFERENCE_TRIGGERS | SHARED_TRIGGERS))
def test_each_rule_is_broken_by_its_minimal_change(code):
    triggers = PREFERENCE_TRIGGERS | SHARED_TRIGGERS
    found = check_record(variant(triggers[code])).problems
    assert code in {p.code for p in found}
    problem = next(p for p in found if p.code == code)
    assert problem.level == CODES[code][0]
    assert problem.message.endswith(".") and len(problem.message) > 15


def test_only_identical_answers_are_a_warning_the_rest_are_errors():
    levels = {code: CODES[code][0] for code in PREFERENCE_TRIGGERS}
    assert levels.pop("preference_outputs_identical") == "warning"
    assert set(levels.values()) == {"error"}
    identical = check_record(variant(PREFERENCE_TRIGGERS["preference_outputs_identical"]))
    assert identical.valid and identical.n_warnings == 1


def test_an_answer_may_be_tool_calls_without_content():
    record = variant(lambda r: r["preferred_output"][0].update(content=None, tool_calls=[CALL]))
    assert codes(record) == set()


def test_an_answer_that_is_not_a_list_or_holds_two_messages_is_one_error():
    for bad in ({"role": "assistant", "content": "x"}, [SIMPLE["preferred_output"][0]] * 2):
        result = check_record(variant(lambda r, bad=bad: r.update(preferred_output=bad)))
        assert [p.code for p in result.problems] == ["preference_output_not_single"]


def test_an_empty_answer_list_counts_as_missing():
    assert "preference_missing_output" in codes(variant(lambda r: r.update(preferred_output=[])))


def test_the_input_must_hold_at_least_one_message():
    assert "preference_missing_input" in codes(variant(lambda r: r["input"].update(messages=[])))
    assert "preference_missing_input" in codes(variant(lambda r: r.update(input=["not", "an", "object"])))


def test_an_input_ending_with_a_tool_result_is_refused_and_points_at_it():
    record = variant(lambda r: r["input"]["messages"].append({"role": "assistant", "content": "ok"}))
    problem = next(p for p in check_record(record).problems if p.code == "input_last_message_not_user")
    assert problem.message_index == 2 and "'assistant'" in problem.message


def test_a_line_with_messages_is_a_chat_example_whatever_else_it_has():
    assert is_preference_record(GOOD) and not is_preference_record({"messages": [], "input": {}})
    assert not is_preference_record(["input"])
    assert "missing_messages_list" in codes({"messages": [], "input": GOOD["input"]})
    assert check_preference(GOOD).n_messages == 2


def test_the_pair_hash_covers_both_answers_and_ignores_key_order():
    swapped = variant(
        lambda r: r.update(preferred_output=r["non_preferred_output"], non_preferred_output=r["preferred_output"])
    )
    assert pair_hash(GOOD) != pair_hash(swapped)
    reordered = variant(
        lambda r: r["preferred_output"].__setitem__(
            0, {"content": r["preferred_output"][0]["content"], "role": "assistant"}
        )
    )
    assert pair_hash(GOOD) == pair_hash(reordered)
    assert "weather in paris?" in pair_search_text(GOOD) and "18c and sunny" in pair_search_text(GOOD)
    assert "weather is a thing" in pair_search_text(GOOD)


def test_apply_check_of_a_preference_example_fills_the_cached_columns():
    example = Example(
        dataset_id=1,
        messages=GOOD["input"]["messages"],
        tools=GOOD["input"]["tools"],
        preferred_output=GOOD["preferred_output"],
        non_preferred_output=[{"role": "user", "content": "no"}],
        token_counts={"o200k_base": {"total": 1, "assistant": 0, "trained": 0}},
    )
    apply_check(example)
    assert not example.valid and example.n_errors == 1 and example.token_counts is None
    assert example.problems[0]["code"] == "preference_output_not_assistant"
    assert example.content_hash == pair_hash(example.to_record()) and "18c" in example.search_text
