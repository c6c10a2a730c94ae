"""Checks of preference (DPO) examples, OpenAI's rules for its DPO JSONL shape, and the check that picks the shape.

A preference example is `{"input": {"messages": [...], "tools": [...]}, "preferred_output": [assistant message],
"non_preferred_output": [assistant message]}`. Its input's messages are checked as a chat example's are
(checks._check_message); the rules of the shape (both answers present, each exactly one assistant message with
text or tool calls, the input ending with the user's turn) add their own codes (codes.py). `check_example` and
`apply_example_check` take either shape: the validation package exports them as check_record and apply_check.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.datasets.validation.checks import (
    ExampleCheck,
    _check_message,
    _check_tools,
    apply_check,
    check_record,
    content_hash,
    json_encoder,
    search_text,
)
from app.datasets.validation.codes import MESSAGE_KEYS
from app.tables.dataset import INPUT_EXTRA

PREFERENCE_KEYS = ("input", "preferred_output", "non_preferred_output")
# Each answer's key and what the pages call it.
ANSWERS = (("preferred_output", "preferred"), ("non_preferred_output", "rejected"))
_sorted_json = json_encoder(sort_keys=True)


def is_preference_record(record: Any) -> bool:
    """Whether a JSONL object has the DPO shape (a `messages` key makes it a chat example, whatever else it has)."""
    return isinstance(record, dict) and "messages" not in record and any(k in record for k in PREFERENCE_KEYS)


def input_of(record: dict[str, Any]) -> tuple[Any, Any]:
    """(messages, tools) of a preference record's input (None for what is missing)."""
    given = record.get("input")
    if not isinstance(given, dict):
        return None, None
    return given.get("messages"), given.get("tools")


def pair_extra(record: dict[str, Any]) -> dict[str, Any] | None:
    """A preference record's `extra` column: its top-level keys besides the input and the answers, plus under
    INPUT_EXTRA its input's keys besides `messages` and `tools` (e.g. `parallel_tool_calls`, an explicit
    `"tools": null`), which Example.to_record() puts back in the input; None when there are none."""
    extra = {k: v for k, v in record.items() if k not in PREFERENCE_KEYS}
    given = record.get("input")
    if isinstance(given, dict):
        others = {k: v for k, v in given.items() if k not in ("messages", "tools") or (k == "tools" and v is None)}
        if others:
            held = extra.get(INPUT_EXTRA)  # the editor shows them as a top-level field of that name
            extra[INPUT_EXTRA] = {**held, **others} if isinstance(held, dict) else others
    return extra or None


def _is_json_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _check_calls(calls: Any, label: str, declared: set[str] | None, result: ExampleCheck) -> None:
    if not isinstance(calls, list) or not calls:
        result.add("invalid_tool_calls", f"The {label} answer's `tool_calls` must be a non-empty list.")
        return
    for n, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            result.add(
                "invalid_tool_calls", f"The {label} answer's tool_calls[{n}] needs an `id` and a `function.name`."
            )
            continue
        arguments = fn.get("arguments")
        if not _is_json_text(arguments):
            result.add(
                "invalid_tool_arguments",
                f"The {label} answer's tool_calls[{n}].function.arguments is not a string of JSON.",
            )
        if declared is None or fn["name"] not in declared:
            where = "the input has no `tools`" if declared is None else "the input's `tools` does not declare it"
            result.add("undeclared_function", f"The {label} answer calls function {fn['name']!r}, but {where}.")


def _check_answer(value: Any, key: str, label: str, declared: set[str] | None, result: ExampleCheck) -> None:
    """One answer: a list of exactly one assistant message with text content or tool calls."""
    if value is None or value == []:
        result.add("preference_missing_output", f"The example has no {label} answer (`{key}`).")
        return
    if not isinstance(value, list) or len(value) != 1:
        held = f"holds {len(value)} messages" if isinstance(value, list) else f"is a JSON {type(value).__name__}"
        result.add("preference_output_not_single", f"`{key}` {held}; it must be a list of one assistant message.")
        return
    message = value[0]
    if not isinstance(message, dict):
        result.add("preference_output_not_assistant", f"The {label} answer is not a message object.")
        return
    if not MESSAGE_KEYS.issuperset(message):
        unknown = sorted(str(k) for k in message if k not in MESSAGE_KEYS)
        result.add("message_unrecognized_key", f"The {label} answer has unrecognized key(s): {', '.join(unknown)}.")
    role = message.get("role")
    if role != "assistant":
        result.add("preference_output_not_assistant", f"The {label} answer's role is {role!r}; it must be 'assistant'.")
    calls = message.get("tool_calls")
    if calls is not None:
        _check_calls(calls, label, declared, result)
    content = message.get("content")
    if not calls and not (isinstance(content, str) and content.strip()):
        why = "is empty" if isinstance(content, str) or content is None else f"is a JSON {type(content).__name__}"
        result.add("preference_output_missing_content", f"The {label} answer's text {why} and it makes no tool calls.")


def check_preference(record: dict[str, Any]) -> ExampleCheck:
    """Check one preference (DPO) example object."""
    result = ExampleCheck()
    messages, tools = input_of(record)
    declared: set[str] | None = None
    if not isinstance(messages, list) or not messages:
        result.add("preference_missing_input", "The example has no `input` with a non-empty `messages` list.")
    else:
        result.n_messages = len(messages)
        declared = _check_tools(tools, result)
        call_ids: set[str] = set()
        for i, message in enumerate(messages):
            _check_message(message, i, declared, call_ids, result)
        last = messages[-1].get("role") if isinstance(messages[-1], dict) else None
        if last != "user":
            result.add(
                "input_last_message_not_user",
                f"The input ends with a {last!r} message; it must end with the user's turn that both answers reply to.",
                len(messages) - 1,
            )
    for key, label in ANSWERS:
        _check_answer(record.get(key), key, label, declared, result)
    preferred, rejected = record.get("preferred_output"), record.get("non_preferred_output")
    if isinstance(preferred, list) and len(preferred) == 1 and preferred == rejected:
        result.add("preference_outputs_identical", "The preferred and rejected answers are the same.")
    return result


def check_example(record: Any) -> ExampleCheck:
    """Check one example object of either shape: chat (checks.check_record) or preference (check_preference)."""
    if is_preference_record(record):
        return check_preference(record)
    return check_record(record)


def pair_hash(record: dict[str, Any]) -> str:
    """The content hash of a preference example: its input (as a chat example's hash) and both answers, so that
    duplicates and train/validation leakage are found on the whole pair."""
    messages, tools = input_of(record)
    base = content_hash({"messages": messages, "tools": tools})
    canonical = "\n".join(
        (base, _sorted_json(record.get("preferred_output")), _sorted_json(record.get("non_preferred_output")))
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def pair_search_text(record: dict[str, Any]) -> str:
    """Lower-cased text of the input's messages and both answers, for substring search."""
    messages, _ = input_of(record)
    every = list(messages) if isinstance(messages, list) else []
    for key, _label in ANSWERS:
        answer = record.get(key)
        if isinstance(answer, list):
            every += answer
    return search_text(every)


def chat_views(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two sequences a DPO step trains on, as chat records: the input with the preferred answer, and the input
    with the rejected one. The input's own assistant turns get weight 0: only the answers are trained."""
    messages, tools = input_of(record)
    given = [
        {**m, "weight": 0} if isinstance(m, dict) and m.get("role") == "assistant" else m
        for m in (messages if isinstance(messages, list) else [])
    ]
    views = []
    for key, _label in ANSWERS:
        answer = record.get(key)
        view: dict[str, Any] = {"messages": [*given, *(answer if isinstance(answer, list) else [])]}
        if tools is not None:
            view["tools"] = tools
        views.append(view)
    return views[0], views[1]


def apply_example_check(example: Any) -> ExampleCheck:
    """Recompute an Example's cached validation columns from its content (either shape); returns the check."""
    if not example.is_preference:
        return apply_check(example)
    record = example.to_record()
    result = check_preference(record)
    example.valid = result.valid
    example.n_errors = result.n_errors
    example.n_warnings = result.n_warnings
    example.problems = [p.as_dict() for p in result.problems]
    example.n_messages = result.n_messages
    example.content_hash = pair_hash(record)
    example.search_text = pair_search_text(record)
    example.token_counts = None  # the report recounts it
    example.near_signature = None  # the report signs it
    return result
