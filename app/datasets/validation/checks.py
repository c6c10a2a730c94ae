"""Format checks of one example: the OpenAI cookbook's error codes, extended to today's chat format.

Codes are stable (stored in Example.problems, used in URLs and the API); messages are plain sentences.
Dataset-level checks (duplicates, leakage, too_few_examples) and the model-dependent context-limit warning live in
`report.py` and `live.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from json import encoder as _json_encoder
from typing import Any, NoReturn

from app.datasets.quality.sensitive import SECRET, scan_messages
from app.datasets.validation.codes import (
    CODES,
    CONTENT_PART_TYPES,
    MESSAGE_KEYS,
    ROLES,
)


@dataclass(frozen=True)
class Problem:
    """One finding: a stable code, error or warning, a plain message, and which message it is about."""

    code: str
    level: str  # "error" | "warning"
    message: str
    message_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in Example.problems."""
        return {"code": self.code, "level": self.level, "message": self.message, "message_index": self.message_index}


@dataclass
class ExampleCheck:
    """The result of checking one example."""

    problems: list[Problem] = field(default_factory=list)
    n_messages: int = 0

    @property
    def valid(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(p.level == "error" for p in self.problems)

    @property
    def n_errors(self) -> int:
        """How many errors."""
        return sum(p.level == "error" for p in self.problems)

    @property
    def n_warnings(self) -> int:
        """How many warnings."""
        return sum(p.level == "warning" for p in self.problems)

    def add(self, code: str, message: str, index: int | None = None) -> None:
        """Record a finding of `code` (its level comes from CODES)."""
        self.problems.append(Problem(code, CODES[code][0], message, index))


def _where(i: int) -> str:
    return f"Message {i + 1}"


def _check_tools(tools: Any, result: ExampleCheck) -> set[str] | None:
    """Names the example's `tools` declares (None when it declares none)."""
    if tools is None:
        return None
    names: set[str] = set()
    if not isinstance(tools, list):
        result.add("invalid_tools", '`tools` must be a list of {"type": "function", "function": {...}}.')
        return names
    for n, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            result.add("invalid_tools", f"`tools[{n}]` is not a function definition with a `name`.")
            continue
        names.add(fn["name"])
    return names


def _check_content(message: dict[str, Any], i: int, result: ExampleCheck) -> None:
    content = message["content"]
    if isinstance(content, str):
        if not content.strip():
            result.add("missing_content", f"{_where(i)} has empty content.", i)
        return
    if isinstance(content, list) and content and message.get("role") in ("user", "system", "developer"):
        for p in content:
            if not isinstance(p, dict) or p.get("type") not in CONTENT_PART_TYPES:
                result.add("missing_content", f"{_where(i)} has a content part that is neither text nor image.", i)
                return
        return
    kind = "null" if content is None else type(content).__name__
    result.add("missing_content", f"{_where(i)} has content of type {kind}; it must be text.", i)


def _check_tool_calls(message: dict[str, Any], i: int, declared: set[str] | None, result: ExampleCheck) -> list[str]:
    """Check an assistant's tool_calls; returns the call ids it makes."""
    calls = message["tool_calls"]
    if message.get("role") != "assistant":
        result.add("invalid_tool_calls", f"{_where(i)} has `tool_calls`, but only assistant messages make calls.", i)
        return []
    if not isinstance(calls, list) or not calls:
        result.add("invalid_tool_calls", f"{_where(i)}: `tool_calls` must be a non-empty list.", i)
        return []
    ids = []
    for n, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            result.add("invalid_tool_calls", f"{_where(i)}: tool_calls[{n}] needs an `id` and a `function.name`.", i)
            continue
        ids.append(call["id"])
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            kind = "an object" if isinstance(arguments, dict) else type(arguments).__name__
            result.add(
                "invalid_tool_arguments",
                f"{_where(i)}: tool_calls[{n}].function.arguments is {kind}; it must be a string of JSON, "
                'such as "{\\"city\\": \\"Paris\\"}".',
                i,
            )
        else:
            try:
                json.loads(arguments)
            except ValueError:
                result.add(
                    "invalid_tool_arguments", f"{_where(i)}: tool_calls[{n}].function.arguments is not valid JSON.", i
                )
        if declared is None or fn["name"] not in declared:
            where = "the example has no `tools`" if declared is None else "`tools` does not declare it"
            result.add("undeclared_function", f"{_where(i)} calls function {fn['name']!r}, but {where}.", i)
    return ids


def _check_message(message: Any, i: int, declared: set[str] | None, call_ids: set[str], result: ExampleCheck) -> None:
    if not isinstance(message, dict):
        result.add("message_missing_key", f"{_where(i)} is not an object with `role` and `content`.", i)
        return
    if not MESSAGE_KEYS.issuperset(message):  # the common case costs one C-level set test
        unknown = sorted(str(k) for k in message if k not in MESSAGE_KEYS)
        result.add("message_unrecognized_key", f"{_where(i)} has unrecognized key(s): {', '.join(unknown)}.", i)
    role = message.get("role")
    if "role" not in message:
        result.add("message_missing_key", f"{_where(i)} has no `role`.", i)
    elif role not in ROLES:
        result.add("unrecognized_role", f"{_where(i)} has role {role!r}; expected one of {', '.join(ROLES)}.", i)
    calls = role == "assistant" and (message.get("tool_calls") or message.get("function_call"))
    if "content" not in message:
        if not calls:
            result.add("message_missing_key", f"{_where(i)} has no `content`.", i)
    elif not (calls and message["content"] in (None, "")):
        _check_content(message, i, result)
    if "weight" in message:
        weight = message["weight"]
        if role != "assistant":
            result.add("invalid_weight", f"{_where(i)} has a `weight`, but only assistant messages can.", i)
        elif isinstance(weight, bool) or weight not in (0, 1):
            result.add("invalid_weight", f"{_where(i)} has weight {weight!r}; it must be 0 or 1.", i)
    if "tool_calls" in message:
        call_ids.update(_check_tool_calls(message, i, declared, result))
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            result.add("message_missing_key", f"{_where(i)} is a tool result without a `tool_call_id`.", i)
        elif call_id not in call_ids:
            result.add("unmatched_tool_call_id", f"{_where(i)} answers tool call {call_id!r}, which no call made.", i)


def check_record(record: Any) -> ExampleCheck:
    """Check one example object (as parsed from a JSONL line)."""
    result = ExampleCheck()
    if not isinstance(record, dict):
        result.add("data_type", f"The example is a JSON {type(record).__name__}, not an object.")
        return result
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        result.add("missing_messages_list", "The example has no non-empty `messages` list.")
        return result
    result.n_messages = len(messages)
    declared = _check_tools(record.get("tools"), result)
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        _check_message(message, i, declared, call_ids, result)
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if "assistant" not in roles:
        result.add("example_missing_assistant_message", "The example has no assistant message.")
    if "system" not in roles and "developer" not in roles:
        result.add("missing_system_message", "The example has no system message.")
    if "user" not in roles:
        result.add("missing_user_message", "The example has no user message.")
    if roles[-1] != "assistant":
        result.add("last_message_not_assistant", "The last message is not the assistant's.", len(roles) - 1)
    weights = [m.get("weight") for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if weights and all(w == 0 and not isinstance(w, bool) for w in weights):
        which = "The only assistant message has" if len(weights) == 1 else "Every assistant message has"
        result.add("nothing_to_train", f"{which} weight 0, so the example trains nothing.")
    started = False
    for i, role in enumerate(roles):
        if role in ("system", "developer"):
            if started:
                result.add(
                    "system_message_not_first",
                    f"Message {i + 1} is a {role} message after the conversation has started; put it first.",
                    i,
                )
        elif role is not None:
            started = True
    for i in range(1, len(roles)):
        # Consecutive tool results are normal (one per parallel call).
        if roles[i] is not None and roles[i] == roles[i - 1] and roles[i] != "tool":
            result.add("consecutive_same_role", f"Messages {i} and {i + 1} are both {roles[i]!r}.", i)
    _check_sensitive(messages, result)
    return result


def _check_sensitive(messages: list[Any], result: ExampleCheck) -> None:
    """contains_pii / contains_secret, one per kind and message; the message shows the finding masked."""
    seen: set[tuple[int, str]] = set()
    for i, finding, preview in scan_messages(messages):
        if (i, finding.kind) in seen:
            continue
        seen.add((i, finding.kind))
        code = "contains_secret" if finding.category == SECRET else "contains_pii"
        result.add(code, f"{_where(i)} contains {finding.label}: {preview}.", i)


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_encoder(*, sort_keys: bool = False, ensure_ascii: bool = True) -> Callable[[Any], str]:
    """json.dumps with default separators as a reusable function: the same text, built ~1.5x faster.

    json.dumps builds a new C encoder on every call, which dominates for small objects. Without circular-reference
    markers: the values come from parsed JSON, which cannot be circular.
    """
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return lambda value: json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    strings = _json_encoder.encode_basestring_ascii if ensure_ascii else _json_encoder.encode_basestring
    encode = make(None, _not_json, strings, None, ": ", ", ", sort_keys, False, True)
    return lambda value: "".join(encode(value, 0))


# What json.loads runs, C-accelerated where available. JSONDecoder sets it in __init__; typeshed leaves it out.
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def json_loads(text: str) -> Any:
    """json.loads, ~20% faster on text that is exactly one JSON value: its C scanner without its Python layers.

    Anything else (surrounding whitespace, a BOM, bad JSON) goes through json.loads itself, so errors and their
    messages are json.loads' own. A RecursionError from absurd nesting propagates as it would from json.loads.
    """
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        end = -1
    return value if end == len(text) else json.loads(text)


class NonFiniteNumber(ValueError):
    """A number json.loads reads as NaN or infinity (`NaN`, `Infinity`, `1e400`): it would be exported as
    `Infinity`, which is not JSON, so imports and the editor refuse it."""


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NonFiniteNumber(text)
    return value


def _no_constant(name: str) -> NoReturn:
    raise NonFiniteNumber(name)


_STRICT_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)
_strict_scan_once = _STRICT_DECODER.scan_once  # type: ignore[attr-defined]  # as _scan_once above


def strict_json_loads(text: str) -> Any:
    """json_loads that refuses what JSON cannot carry: NaN, Infinity and numbers beyond a float (NonFiniteNumber).

    The hooks cost nothing on lines without floats; a line with floats pays one Python call per float.
    """
    try:
        value, end = _strict_scan_once(text, 0)
    except NonFiniteNumber:
        raise
    except (StopIteration, ValueError):
        end = -1
    return value if end == len(text) else json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


_json = json_encoder()
_sorted_json = json_encoder(sort_keys=True)
_LEADING_KEYS = ("role", "content")
# Messages shaped like these (keys in this order, text values) are already in canonical form as json.dumps writes
# them: their stored JSON text is their canonical text.
_PLAIN_MESSAGE_KEYS = (_LEADING_KEYS, (*_LEADING_KEYS, "weight"))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _canonical_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return _sorted_keys(message)
    keys = [k for k in _LEADING_KEYS if k in message] + sorted(k for k in message if k not in _LEADING_KEYS)
    return {key: _sorted_keys(message[key]) for key in keys}


def _is_plain(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    for m in messages:
        if type(m) is not dict or tuple(m) not in _PLAIN_MESSAGE_KEYS or type(m["role"]) is not str:
            return False
        if type(m["content"]) is not str or isinstance(m.get("weight"), dict | list):
            return False
    return True


def content_hash(record: dict[str, Any], messages_json: str | None = None) -> str:
    """A hash of the example's content, for duplicate and train/validation leakage checks.

    Key order does not matter: the hash is of a canonical text, JSON as json.dumps writes it (ASCII) with each
    message's keys in the order role, content, then the others sorted, and every other object's keys sorted;
    then a newline and `tools` with sorted keys. Most messages are stored in that order already, so the stored
    JSON (`messages_json`, when the caller has it) is reused instead of writing the messages a second time.
    Hashes are stored: a new definition needs a migration that recomputes them (as 0003 did for this one).
    """
    messages, tools = record.get("messages"), record.get("tools")
    if _is_plain(messages):
        text = messages_json if messages_json is not None else _json(messages)
    else:
        text = _json(
            [_canonical_message(m) for m in messages] if isinstance(messages, list) else _sorted_keys(messages)
        )
    canonical = text + "\n" + _sorted_json(tools)
    return hashlib.sha256(canonical.encode()).hexdigest()


def search_text(messages: Any) -> str:
    """Lower-cased text of every message, for substring search."""
    if not isinstance(messages, list):
        return ""
    try:
        # The usual shape, every message an object with text content, in one C-level pass.
        return "\n".join([m["content"] for m in messages]).lower()
    except (TypeError, KeyError):
        pass
    parts = []
    for m in messages:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
    return "\n".join(parts).lower()


def cached_columns(record: dict[str, Any]) -> tuple[ExampleCheck, list[dict[str, Any]], str, str]:
    """(check, problems as stored, content_hash, search_text) of one example record: the cached columns' values."""
    result = check_record(record)
    problems = [p.as_dict() for p in result.problems] if result.problems else []
    return result, problems, content_hash(record), search_text(record.get("messages"))


def apply_check(example) -> ExampleCheck:
    """Recompute an Example's cached validation columns from its content; returns the check."""
    record = example.to_record()
    result, problems, digest, text = cached_columns(record)
    example.valid = result.valid
    example.n_errors = result.n_errors
    example.n_warnings = result.n_warnings
    example.problems = problems
    example.n_messages = result.n_messages
    example.content_hash = digest
    example.search_text = text
    example.token_counts = None  # the example changed: the report recounts it (in bulk) and caches the result
    example.near_signature = None  # cleared, not re-signed (8x this check's time): the report signs in bulk
    return result
