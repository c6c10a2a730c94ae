"""The example editor's form for a preference pair: the shared conversation (the chat editor's message rows), then
the preferred and the rejected answer side by side. `record_from_form` and `check_form` take either kind of form."""

from __future__ import annotations

import json
from typing import Any

from app.datasets import validation
from app.datasets.forms import FieldError, FormCheck, _get, _parse, _parse_json
from app.datasets.forms import check_form as check_chat_form
from app.datasets.forms import record_from_form as chat_record_from_form
from app.datasets.limits import Limits
from app.datasets.records import pair_parts
from app.datasets.validation.preference import input_of
from app.errors import Invalid
from app.tables.dataset import INPUT_EXTRA

# Each answer's form prefix, its key in the DPO record and its heading.
ANSWERS = (("preferred", "preferred_output", "Preferred"), ("rejected", "non_preferred_output", "Rejected"))
BLANK_PAIR: dict[str, Any] = {
    "input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""}]},
    "preferred_output": [{"role": "assistant", "content": ""}],
    "non_preferred_output": [{"role": "assistant", "content": ""}],
}


def is_pair_form(form: Any) -> bool:
    """Whether the editor's form is a preference pair's (its hidden `kind` field says so)."""
    return _get(form, "kind") == "preference"


def _answer(form: Any, prefix: str, heading: str, errors: list[FieldError]) -> dict[str, Any]:
    text = _get(form, f"{prefix}_content").replace("\r\n", "\n")
    message: dict[str, Any] = {"role": "assistant"}
    calls_text = _get(form, f"{prefix}_tool_calls")
    calls = None
    if calls_text.strip():
        what = f"{heading} answer: tool_calls"
        calls = _parse_json(calls_text, what, f"{prefix}_tool_calls", None, errors, list)
    if text or calls is None:
        message["content"] = text  # an answer that only calls tools has no content
    if calls is not None:
        message["tool_calls"] = calls
    return message


def _parse_pair(form: Any) -> tuple[dict[str, Any], list[FieldError]]:
    chat, errors = _parse(form)
    given: dict[str, Any] = {"messages": chat.pop("messages")}
    if "tools" in chat:
        given["tools"] = chat.pop("tools")
    record: dict[str, Any] = {"input": given}
    for prefix, key, heading in ANSWERS:
        record[key] = [_answer(form, prefix, heading, errors)]
    record.update(chat)  # the other top-level fields
    held = record.pop(INPUT_EXTRA, None)  # the input's other keys, shown under this name by conversation_of
    if isinstance(held, dict):
        given.update({k: v for k, v in held.items() if k not in given})
    elif held is not None:
        record[INPUT_EXTRA] = held
    return record, errors


def record_from_form(form: Any) -> dict[str, Any]:
    """The editor's form as a record: a preference pair, or a chat example; a broken JSON box raises Invalid."""
    if not is_pair_form(form):
        return chat_record_from_form(form)
    record, errors = _parse_pair(form)
    if errors:
        first = errors[0]
        raise Invalid(first.message, code="invalid_json", param=first.param, details=[e.__dict__ for e in errors])
    return record


def check_form(form: Any, limits: Limits | None = None) -> FormCheck:
    """Check the editor form as the person types (either kind): JSON boxes and size limits, then the validation
    checks and token counts (a pair's: its input once with each answer)."""
    if not is_pair_form(form):
        return check_chat_form(form, limits)
    record, errors = _parse_pair(form)
    if not errors:
        try:
            pair_parts(record, limits)
        except Invalid as refused:
            errors.append(FieldError(refused.param or "", refused.message))
    if errors:
        return FormCheck(record=None, field_errors=errors)
    result = validation.check_record(record)
    tokens = validation.count_tokens(record, model=None)
    return FormCheck(record=record, problems=list(result.problems), tokens=tokens)


def conversation_of(record: dict[str, Any]) -> dict[str, Any]:
    """A pair's input and other top-level fields as a chat record, for the editor's message rows and JSON boxes."""
    messages, tools = input_of(record)
    chat: dict[str, Any] = {"messages": messages if isinstance(messages, list) else []}
    given = record.get("input")
    if isinstance(given, dict) and "tools" in given:
        chat["tools"] = tools
    chat.update({k: v for k, v in record.items() if k not in ("input", "preferred_output", "non_preferred_output")})
    # The input's keys besides messages and tools (e.g. parallel_tool_calls): in the "other top-level fields" box
    # under INPUT_EXTRA, put back in the input when the form is read (_parse_pair).
    others = {k: v for k, v in given.items() if k not in ("messages", "tools")} if isinstance(given, dict) else {}
    if others:
        chat[INPUT_EXTRA] = others
    return chat


def answer_boxes(record: dict[str, Any]) -> list[dict[str, str]]:
    """Each answer's editor box: prefix, heading, text and tool_calls JSON (an odd answer is shown as JSON text)."""
    boxes = []
    for prefix, key, heading in ANSWERS:
        answer = record.get(key)
        message = answer[0] if isinstance(answer, list) and answer else {}
        if not isinstance(message, dict) or (isinstance(answer, list) and len(answer) > 1):
            # Not one message: shown whole, so that saving it as text loses nothing the person cannot see.
            text, calls = json.dumps(answer, ensure_ascii=False, indent=2), ""
        else:
            content = message.get("content")
            text = content if isinstance(content, str) else ("" if content is None else json.dumps(content))
            listed = message.get("tool_calls")
            calls = json.dumps(listed, ensure_ascii=False, indent=2) if listed is not None else ""
        boxes.append({"prefix": prefix, "heading": heading, "content": text, "tool_calls": calls})
    return boxes
