"""The example editor's form <-> a chat record, with clear messages for JSON typed by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.datasets import validation
from app.datasets.json_limits import MAX_JSON_DEPTH, nesting_depth_exceeds
from app.datasets.limits import Limits, refusal
from app.datasets.validation.checks import NonFiniteNumber, strict_json_loads
from app.errors import Invalid

ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass
class FieldError:
    """A JSON box that does not parse: where it is and why."""

    param: str
    message: str
    message_index: int | None = None


@dataclass
class FormCheck:
    """The editor form checked: the record (None if a JSON box is broken), its problems and token counts."""

    record: dict[str, Any] | None
    field_errors: list[FieldError] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)
    tokens: Any = None

    @property
    def valid(self) -> bool:
        return not self.field_errors and not any(p.level == "error" for p in self.problems)


def _getlist(form: Any, key: str) -> list[str]:
    if hasattr(form, "getlist"):
        return [v if isinstance(v, str) else "" for v in form.getlist(key)]
    value = form.get(key, [])
    return list(value) if isinstance(value, list | tuple) else [value]


def _get(form: Any, key: str, default: str = "") -> str:
    value = form.get(key, default)
    if isinstance(value, list | tuple):
        value = value[0] if value else default
    return value if isinstance(value, str) else default


def _parse_json(text: str, what: str, param: str, index: int | None, errors: list[FieldError], want=None):
    try:
        value = strict_json_loads(text)
    except NonFiniteNumber as exc:
        message = f"{what} holds {str(exc)[:40]}, a number JSON cannot carry (NaN, Infinity, or too large)."
        errors.append(FieldError(param, message, index))
        return None
    except json.JSONDecodeError as exc:
        errors.append(
            FieldError(param, f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", index)
        )
        return None
    except ValueError as exc:  # such as an integer of more digits than Python converts
        errors.append(FieldError(param, f"{what} is not usable JSON: {exc}.", index))
        return None
    except RecursionError:
        errors.append(FieldError(param, _too_deep(what), index))
        return None
    if nesting_depth_exceeds(value):
        errors.append(FieldError(param, _too_deep(what), index))
        return None
    if want is not None and not isinstance(value, want):
        kind = "an object {…}" if want is dict else "a list […]"
        errors.append(FieldError(param, f"{what} must be {kind}.", index))
        return None
    return value


def _too_deep(what: str) -> str:
    return f"{what} nests lists or objects more than {MAX_JSON_DEPTH} levels deep."


def _parse(form: Any) -> tuple[dict[str, Any], list[FieldError]]:
    errors: list[FieldError] = []
    roles = _getlist(form, "msg_role")
    n = len(roles)

    def column(key: str) -> list[str]:
        values = _getlist(form, key)
        return values + [""] * (n - len(values))

    contents, kinds, weights = column("msg_content"), column("msg_kind"), column("msg_weight")
    tool_calls, more = column("msg_tool_calls"), column("msg_more")
    messages: list[dict[str, Any]] = []
    for i in range(n):
        label = f"Message {i + 1}"
        message: dict[str, Any] = {"role": roles[i]}
        text, kind = contents[i].replace("\r\n", "\n"), kinds[i] or "text"
        if kind == "json":
            parsed = _parse_json(text, f"{label}: content", f"messages[{i}].content", i, errors)
            message["content"] = parsed if parsed is not None else text
        elif kind == "null" and text == "":
            message["content"] = None
        elif not (kind == "absent" and text == ""):
            message["content"] = text
        if more[i].strip():
            extra = _parse_json(more[i], f"{label}: other fields", f"messages[{i}].more", i, errors, dict)
            for key, value in (extra or {}).items():
                if key not in ("role", "content"):
                    message[key] = value
        if tool_calls[i].strip():
            calls = _parse_json(tool_calls[i], f"{label}: tool_calls", f"messages[{i}].tool_calls", i, errors, list)
            if calls is not None:
                message["tool_calls"] = calls
        if weights[i] in ("0", "1"):
            message["weight"] = int(weights[i])
        messages.append(message)
    record: dict[str, Any] = {"messages": messages}
    tools_text = _get(form, "tools")
    if tools_text.strip() == "null":
        record["tools"] = None  # an explicit null is kept, so the example round-trips
    elif tools_text.strip():
        tools = _parse_json(tools_text, "Tools", "tools", None, errors, list)
        if tools is not None:
            record["tools"] = tools
    extra_text = _get(form, "extra")
    if extra_text.strip():
        extra = _parse_json(extra_text, "Other top-level fields", "extra", None, errors, dict)
        for key, value in (extra or {}).items():
            if key not in ("messages", "tools"):
                record[key] = value
    return record, errors


def record_from_form(form: Any) -> dict[str, Any]:
    """Turn the editor's form fields into a chat record; a broken JSON box raises Invalid naming it."""
    record, errors = _parse(form)
    if errors:
        first = errors[0]
        raise Invalid(first.message, code="invalid_json", param=first.param, details=[e.__dict__ for e in errors])
    return record


def check_form(form: Any, limits: Limits | None = None) -> FormCheck:
    """Check the editor form as the person types: JSON boxes and size limits, then the validation checks and
    token counts."""
    record, errors = _parse(form)
    if not errors:
        refused = refusal(record, limits)
        if refused is not None:
            index = int(refused.param[9:].split("]")[0]) if refused.param.startswith("messages[") else None
            errors.append(FieldError(refused.param, refused.message, index))
    if errors:
        return FormCheck(record=None, field_errors=errors)
    result = validation.check_record(record)
    tokens = validation.count_tokens(record, model=None)
    return FormCheck(record=record, problems=list(result.problems), tokens=tokens)


def editor_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's messages as editor rows: role, content text and kind, weight, tool_calls and other keys."""
    rows = []
    for message in record.get("messages") or []:
        if not isinstance(message, dict):
            message = {"role": "", "content": json.dumps(message, ensure_ascii=False)}
        content = message.get("content", ...)
        if content is ...:
            kind, text = "absent", ""
        elif content is None:
            kind, text = "null", ""
        elif isinstance(content, str):
            kind, text = "text", content
        else:
            kind, text = "json", json.dumps(content, ensure_ascii=False, indent=2)
        weight = message.get("weight")
        simple_weight = weight in (0, 1) and not isinstance(weight, bool)
        calls_listed = isinstance(message.get("tool_calls"), list)
        # Odd values (weight 0.5, tool_calls not a list) stay in the "other fields" box so nothing is lost.
        more = {
            k: v
            for k, v in message.items()
            if k not in ("role", "content")
            and not (k == "weight" and simple_weight)
            and not (k == "tool_calls" and calls_listed)
        }
        rows.append(
            {
                "role": message.get("role") if isinstance(message.get("role"), str) else "",
                "content": text,
                "kind": kind,
                "weight": str(weight) if simple_weight else "",
                "tool_calls": json.dumps(message["tool_calls"], ensure_ascii=False, indent=2) if calls_listed else "",
                "more": json.dumps(more, ensure_ascii=False) if more else "",
            }
        )
    return rows


def top_level_texts(record: dict[str, Any]) -> dict[str, str]:
    """The record's tools and other top-level keys as JSON text for the editor's boxes."""
    extra = {k: v for k, v in record.items() if k not in ("messages", "tools")}
    tools = record.get("tools")
    return {
        "tools": json.dumps(tools, ensure_ascii=False, indent=2) if "tools" in record else "",
        "extra": json.dumps(extra, ensure_ascii=False, indent=2) if extra else "",
    }
