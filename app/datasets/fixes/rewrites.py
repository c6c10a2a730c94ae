"""The mechanical rewrites behind the bulk fixes: pure functions of a list of messages (no database).

Each returns the rewritten list, or None when nothing in it changes, so a fix touches only what it must.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

Rewrite = Callable[[list[Any]], list[Any] | None]


def _texts(message: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(holder, key) of each text in a message: a string content, or the `text` of each text part."""
    content = message.get("content")
    if isinstance(content, str):
        return [(message, "content")]
    if isinstance(content, list):
        return [
            (part, "text")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
    return []


def message_texts(messages: Any) -> list[tuple[int, str, str]]:
    """(index, role, text) of every text in a message list (nothing for what is not one)."""
    out: list[tuple[int, str, str]] = []
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(message, dict):
            role = str(message.get("role", "?"))
            out += [(index, role, holder[key]) for holder, key in _texts(message)]
    return out


def _rewrite_texts(messages: list[Any], change: Callable[[str], str]) -> list[Any] | None:
    # Looked at before copied: most examples need no change, and a deep copy of each would dominate a preview.
    if all(change(text) == text for _, _, text in message_texts(messages)):
        return None
    out = copy.deepcopy(messages)
    for message in out:
        if isinstance(message, dict):
            for holder, key in _texts(message):
                holder[key] = change(holder[key])
    return out


def _functions(messages: list[Any]) -> list[dict[str, Any]]:
    """The `function` object of every tool call in the messages."""
    out: list[dict[str, Any]] = []
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                out.append(function)
    return out


def string_tool_arguments(messages: list[Any]) -> list[Any] | None:
    """Each `tool_calls[].function.arguments` given as a JSON object becomes the string of JSON OpenAI expects."""
    if not any(isinstance(f.get("arguments"), dict) for f in _functions(messages)):
        return None
    out = copy.deepcopy(messages)
    for function in _functions(out):
        if isinstance(function.get("arguments"), dict):
            function["arguments"] = json.dumps(function["arguments"], ensure_ascii=False)
    return out


def strip_trailing_whitespace(messages: list[Any]) -> list[Any] | None:
    """Spaces, tabs and newlines at the end of a message's text are cut (the model would learn to emit them)."""
    return _rewrite_texts(messages, str.rstrip)


def _mask_value(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v, mask) for v in value]
    return value


def _mask_arguments(arguments: Any, mask: Callable[[str], str]) -> Any:
    """A call's arguments masked: an object's strings, or the string of JSON (kept only if it still parses)."""
    if not isinstance(arguments, str):
        return _mask_value(arguments, mask)
    masked = mask(arguments)
    try:
        json.loads(arguments)
    except ValueError:
        return masked  # not JSON before: nothing to keep parseable
    try:
        json.loads(masked)
    except ValueError:
        return _json_masked(arguments, mask)
    return masked


def _json_masked(arguments: str, mask: Callable[[str], str]) -> str:
    """A mask that crossed a JSON string's quotes: mask the parsed strings and write the JSON again."""
    return json.dumps(_mask_value(json.loads(arguments), mask), ensure_ascii=False)


def mask_texts(messages: list[Any], mask: Callable[[str], str]) -> list[Any] | None:
    """Every message text and tool call's arguments passed through `mask` (personal data and secrets replaced by
    <EMAIL>, <CARD>…)."""
    texts = _rewrite_texts(messages, mask)
    out = texts if texts is not None else messages
    functions = [f for f in _functions(out) if "arguments" in f]
    masked = [_mask_arguments(f["arguments"], mask) for f in functions]
    if all(new == f["arguments"] for new, f in zip(masked, functions, strict=True)):
        return texts
    if texts is None:
        out = copy.deepcopy(messages)
        functions = [f for f in _functions(out) if "arguments" in f]
    for function, new in zip(functions, masked, strict=True):
        function["arguments"] = new
    return out
