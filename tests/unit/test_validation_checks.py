"""Every validation code: a minimal example that triggers it and one that does not."""

from __future__ import annotations

import copy
import json

import pytest

from app.datasets.validation import check_record
from app.datasets.validation.checks import apply_check
from app.datasets.validation.codes import CODES, ERROR_CODES, WARNING_CODES
from tests.conftest import FIXTURES, SHARED
from tests.unit.test_preference_checks import PREFERENCE_TRIGGERS

GOOD = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me look.", "weight": 0},
        {"role": "user", "content": "Go on."},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "assistant", "content": "18C and sunny.", "weight": 1},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
}
SIMPLE = {
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
    ]
}


def variant(change) -> dict:
    """A deep copy of GOOD after `change(record)`."""
    record = copy.deepcopy(GOOD)
    result = change(record)
    return record if result is None else result


def codes(record) -> set[str]:
    """The codes check_record finds."""
    return {p.code for p in check_record(record).problems}


TRIGGERS = {
    "data_type": lambda r: ["not", "an", "object"],
    "missing_messages_list": lambda r: {"messages": []},
    "message_missing_key": lambda r: r["messages"][1].pop("content") and None,
    "message_unrecognized_key": lambda r: r["messages"][1].update(mood="happy"),
    "unrecognized_role": lambda r: r["messages"][1].update(role="human"),
    "missing_content": lambda r: r["messages"][1].update(content=""),
    "example_missing_assistant_message": lambda r: {"messages": r["messages"][:2]},
    "invalid_weight": lambda r: r["messages"][2].update(weight=0.5),
    "invalid_tool_calls": lambda r: r["messages"][4].update(tool_calls=[{"type": "function"}]),
    "invalid_tool_arguments": lambda r: r["messages"][4]["tool_calls"][0]["function"].update(
        arguments={"city": "Paris"}
    ),
    "unmatched_tool_call_id": lambda r: r["messages"][5].update(tool_call_id="call_9"),
    "undeclared_function": lambda r: r["tools"][0]["function"].update(name="get_time"),
    "invalid_tools": lambda r: r.update(tools={"get_weather": {}}),
    "missing_system_message": lambda r: {"messages": r["messages"][1:], "tools": r["tools"]},
    "missing_user_message": lambda r: {"messages": [r["messages"][0], {"role": "assistant", "content": "Hi."}]},
    "last_message_not_assistant": lambda r: {
        "messages": [*r["messages"], {"role": "user", "content": "Thanks"}],
        "tools": r["tools"],
    },
    "consecutive_same_role": lambda r: {"messages": [r["messages"][0], *r["messages"][1:2] * 2, r["messages"][2]]},
    "nothing_to_train": lambda r: {
        "messages": [*r["messages"][:2], {"role": "assistant", "content": "a", "weight": 0}]
    },
    "system_message_not_first": lambda r: {
        "messages": [r["messages"][1], r["messages"][0], {"role": "assistant", "content": "a"}]
    },
}


def test_the_reference_example_has_no_problem_at_all():
    assert check_record(GOOD).problems == []
    assert check_record(SIMPLE).problems == []


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_each_per_example_code_is_triggered_by_its_minimal_example(code):
    found = check_record(variant(TRIGGERS[code])).problems
    assert code in {p.code for p in found}
    problem = next(p for p in found if p.code == code)
    assert problem.level == CODES[code][0]
    assert problem.message.endswith(".") and len(problem.message) > 15


def test_every_documented_code_is_tested_here_or_at_dataset_level():
    dataset_level = {"over_context_limit", "duplicate_example", "train_validation_leakage", "too_few_examples"}
    assert set(TRIGGERS) | dataset_level | set(PREFERENCE_TRIGGERS) == set(CODES)
    assert set(ERROR_CODES) | set(WARNING_CODES) == set(CODES)


def test_weight_zero_everywhere_trains_nothing_but_one_trained_turn_is_enough():
    """Issue #17: an example whose only assistant message has weight 0 trains nothing: a warning, not silence."""
    only = {"messages": [*SIMPLE["messages"][:2], {"role": "assistant", "content": "a", "weight": 0}]}
    problem = next(p for p in check_record(only).problems if p.code == "nothing_to_train")
    assert problem.level == "warning" and "The only assistant message has weight 0" in problem.message
    assert check_record(only).valid
    assert "nothing_to_train" not in codes(GOOD)  # one weight-0 turn, one trained turn
    assert "nothing_to_train" not in codes(SIMPLE)


def test_a_system_message_in_the_middle_of_the_conversation_is_a_warning():
    middle = {"messages": [*SIMPLE["messages"][1:], {"role": "system", "content": "s"}, *SIMPLE["messages"][1:]]}
    problem = next(p for p in check_record(middle).problems if p.code == "system_message_not_first")
    assert problem.level == "warning" and problem.message_index == 2 and problem.message.startswith("Message 3 is")
    two_at_the_start = {"messages": [{"role": "system", "content": "s"}, *SIMPLE["messages"]]}
    assert "system_message_not_first" not in codes(two_at_the_start)


def test_cookbook_error_codes_are_all_present():
    cookbook = {
        "data_type",
        "missing_messages_list",
        "message_missing_key",
        "message_unrecognized_key",
        "unrecognized_role",
        "missing_content",
        "example_missing_assistant_message",
    }
    assert cookbook <= set(ERROR_CODES)


def test_problems_point_at_the_message_they_are_about():
    record = variant(lambda r: r["messages"][3].update(role="robot"))
    problem = next(p for p in check_record(record).problems if p.code == "unrecognized_role")
    assert problem.message_index == 3
    assert "Message 4" in problem.message and "'robot'" in problem.message


def test_an_assistant_message_with_tool_calls_may_have_no_content():
    assert "missing_content" not in codes(variant(lambda r: r["messages"][4].update(content=None)))
    assert "message_missing_key" not in codes(GOOD)


def test_a_plain_assistant_message_without_content_is_an_error():
    assert "message_missing_key" in codes({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]})
    assert "missing_content" in codes(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]}
    )


def test_weight_must_be_zero_or_one_and_only_on_assistant_messages():
    assert "invalid_weight" in codes(variant(lambda r: r["messages"][2].update(weight=True)))
    assert "invalid_weight" in codes(variant(lambda r: r["messages"][1].update(weight=1)))
    assert "invalid_weight" not in codes(variant(lambda r: r["messages"][2].update(weight=1)))


def test_tool_arguments_that_are_a_string_but_not_json_are_an_error():
    bad = variant(lambda r: r["messages"][4]["tool_calls"][0]["function"].update(arguments="{city: Paris"))
    assert "invalid_tool_arguments" in codes(bad)


def test_a_called_function_without_any_tools_is_undeclared():
    assert "undeclared_function" in codes(variant(lambda r: r.pop("tools") and None))


def test_a_tool_answer_before_its_call_does_not_match():
    def swap(r):
        r["messages"][4], r["messages"][5] = r["messages"][5], r["messages"][4]

    assert "unmatched_tool_call_id" in codes(variant(swap))


def test_consecutive_tool_results_are_not_flagged():
    def parallel(r):
        r["messages"][4]["tool_calls"].append(
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        )
        r["messages"].insert(6, {"role": "tool", "tool_call_id": "call_2", "content": "20C"})

    assert codes(variant(parallel)) == set()


def test_user_content_parts_with_text_and_images_are_accepted():
    parts = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert codes(variant(lambda r: r["messages"][1].update(content=parts))) == set()
    assert "missing_content" in codes(variant(lambda r: r["messages"][1].update(content=[{"type": "audio"}])))


def test_the_daneel_dataset_names_its_object_arguments_mistake(shared_datasets):
    lines = (shared_datasets / "daneel_shop_tools_validation_set.jsonl").read_text().splitlines()
    found = [codes(json.loads(line)) for line in lines]
    assert sum("invalid_tool_arguments" in f for f in found) > 0
    assert all(f <= {"invalid_tool_arguments"} for f in found)


def test_warnings_do_not_make_an_example_invalid():
    result = check_record({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    assert result.valid and result.n_warnings == 1 and result.n_errors == 0


def test_apply_check_fills_the_cached_columns_and_resets_token_counts():
    class Row:
        def __init__(self):
            self.messages = GOOD["messages"]
            self.tools = GOOD["tools"]
            self.extra = None
            self.token_counts = {"o200k_base": {"total": 1, "assistant": 0, "trained": 0}}

        def to_record(self):
            return {"messages": self.messages, "tools": self.tools}

    row = Row()
    apply_check(row)
    assert row.valid and row.n_messages == 7 and row.problems == []
    assert row.token_counts is None
    assert len(row.content_hash) == 64 and "paris" in row.search_text


@pytest.fixture
def shared_datasets():
    """The real third-party datasets (tests/fixtures holds the datasets engineer's copies)."""
    here = FIXTURES if (FIXTURES / "daneel_shop_tools_validation_set.jsonl").exists() else SHARED / "datasets"
    return here
