"""Tool calling and structured outputs, checked as OpenAI checks them (its wording, codes and `param` paths):
`tools`, `tool_choice`, `parallel_tool_calls` and `response_format` (the calls and results inside messages are
checked in tool_messages.py).

Shared by /v1/chat/completions and the playground; the engine gets the normalized values in ChatParams.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from app.datasets.json_limits import nesting_depth_exceeds
from app.errors import Invalid
from app.evals.graders.json_check import check_schema

NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_NAME = 64
MAX_TOOLS = 128
TOOL_CHOICES = ("none", "auto", "required")
RESPONSE_FORMATS = ("json_object", "json_schema", "text")
# OpenAI's Structured Outputs allow 10 levels of nesting; the JSON limit of stored data (64) guards the checks.
MAX_SCHEMA_DEPTH = 64
_OBJECT_SCHEMA_KEYS = ("properties", "additionalProperties", "required")


@dataclass
class ToolOptions:
    """The checked tool-calling and structured-output parameters of one request (ChatParams' new fields)."""

    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def type_error(param: str, expected: str, value: Any) -> Invalid:
    return Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        code="invalid_type",
        param=param,
    )


def missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)


def supported(param: str, value: Any, choices: tuple[str, ...]) -> Invalid:
    quoted = [f"'{c}'" for c in choices]
    listed = (
        quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f"{',' if len(quoted) > 2 else ''} and {quoted[-1]}"
    )
    shown = repr(value)[:80] if isinstance(value, str) else _kind(value)
    return Invalid(f"Invalid value: {shown}. Supported values are: {listed}.", code="invalid_value", param=param)


def check_name(name: Any, param: str) -> str:
    """A function or schema name: letters, digits, underscores and dashes, at most 64 of them."""
    if name is None:
        raise missing(param)
    if not isinstance(name, str):
        raise type_error(param, "a string", name)
    if len(name) > MAX_NAME:
        raise Invalid(
            f"Invalid '{param}': string too long. Expected a string with maximum length {MAX_NAME}, "
            f"but got a string with length {len(name)} instead.",
            code="string_above_max_length",
            param=param,
        )
    if not NAME.match(name):
        raise Invalid(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'{NAME.pattern}'.",
            code="invalid_value",
            param=param,
        )
    return name


def strict_problem(schema: dict[str, Any]) -> str | None:
    """Why a schema breaks OpenAI's strict rules (every object closed and requiring all its properties), or None."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
    while stack:
        node, context = stack.pop()
        if not isinstance(node, dict):
            continue
        where = f"In context={context!r}, "
        if node.get("type") == "object" or any(key in node for key in _OBJECT_SCHEMA_KEYS):
            if node.get("additionalProperties") is not False:
                return where + "'additionalProperties' is required to be supplied and to be false."
            properties = node.get("properties") or {}
            missing = [key for key in properties if key not in (node.get("required") or [])]
            if missing:
                return (
                    where + "'required' is required to be supplied and to be an array including every key in "
                    f"properties. Missing '{missing[0]}'."
                )
            stack.extend((child, (*context, "properties", key)) for key, child in properties.items())
        for key in ("items", "not"):
            stack.append((node.get(key), (*context, key)))
        for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
            children = node.get(key)
            if isinstance(children, list):
                stack.extend((child, (*context, key, str(n))) for n, child in enumerate(children))
        for key in ("$defs", "definitions"):
            children = node.get(key)
            if isinstance(children, dict):
                stack.extend((child, (*context, key, name)) for name, child in children.items())
    return None


def check_json_schema(schema: Any, param: str, what: str, *, strict: bool, code: str) -> dict[str, Any]:
    """A JSON Schema for a function's parameters or a response format: valid, an object, strict when asked."""
    if not isinstance(schema, dict):
        raise type_error(param, "an object", schema)
    if nesting_depth_exceeds(schema, MAX_SCHEMA_DEPTH):
        raise Invalid(
            f"Invalid schema for {what}: it nests deeper than {MAX_SCHEMA_DEPTH} levels.", code=code, param=param
        )
    try:
        check_schema(schema, param)
    except Invalid as exc:
        raise Invalid(f"Invalid schema for {what}: {exc.message}", code=code, param=param) from None
    if "type" in schema and schema["type"] != "object":
        shown = schema["type"] if isinstance(schema["type"], str) else _kind(schema["type"])
        raise Invalid(
            f"Invalid schema for {what}: schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{shown}\"'.",
            code=code,
            param=param,
        )
    if strict:
        problem = strict_problem(schema)
        if problem:
            raise Invalid(f"Invalid schema for {what}: {problem}", code=code, param=param)
    return copy.deepcopy(schema)


def _strict_flag(value: Any, param: str) -> bool:
    if value is not None and not isinstance(value, bool):
        raise type_error(param, "a boolean", value)
    return bool(value)


def check_tool(tool: Any, param: str) -> dict[str, Any]:
    """One function tool `{"type": "function", "function": {name, description?, parameters?, strict?}}`."""
    if not isinstance(tool, dict):
        raise type_error(param, "an object", tool)
    if tool.get("type") is None:
        raise missing(f"{param}.type")
    if tool["type"] != "function":
        raise supported(f"{param}.type", tool["type"], ("function",))
    function = tool.get("function")
    if function is None:
        raise missing(f"{param}.function")
    if not isinstance(function, dict):
        raise type_error(f"{param}.function", "an object", function)
    name = check_name(function.get("name"), f"{param}.function.name")
    out: dict[str, Any] = {"name": name}
    description = function.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise type_error(f"{param}.function.description", "a string", description)
        out["description"] = description
    strict = _strict_flag(function.get("strict"), f"{param}.function.strict")
    if function.get("parameters") is not None:
        out["parameters"] = check_json_schema(
            function["parameters"],
            f"{param}.function.parameters",
            f"function '{name}'",
            strict=strict,
            code="invalid_function_parameters",
        )
    elif strict:
        # OpenAI's reading of a function without parameters: it takes none.
        out["parameters"] = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    if function.get("strict") is not None:
        out["strict"] = strict
    return {"type": "function", "function": out}


def check_tools(tools: Any, param: str = "tools") -> list[dict[str, Any]] | None:
    """The request's tools, each checked (None when there are none); function names must be distinct."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise type_error(param, "an array", tools)
    if not tools:
        raise Invalid(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            code="empty_array",
            param=param,
        )
    if len(tools) > MAX_TOOLS:
        raise Invalid(
            f"Invalid '{param}': array too long. Expected an array with maximum length {MAX_TOOLS}, but got an "
            f"array with length {len(tools)} instead.",
            code="array_above_max_length",
            param=param,
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        checked = check_tool(tool, f"{param}[{index}]")
        name = checked["function"]["name"]
        if name in seen:
            raise Invalid(
                f"Invalid '{param}': two functions are named '{name}'; each needs its own name.",
                code="invalid_value",
                param=f"{param}[{index}].function.name",
            )
        seen.add(name)
        out.append(checked)
    return out


def check_tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> str | dict[str, Any] | None:
    """ "none", "auto", "required" or a named function among the tools; "auto" when tools come without a choice."""
    if choice is None:
        return "auto" if tools else None
    if not tools:
        raise Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            code="invalid_value",
            param="tool_choice",
        )
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise supported("tool_choice", choice, TOOL_CHOICES)
        return choice
    if not isinstance(choice, dict):
        raise type_error("tool_choice", "a string or an object", choice)
    if choice.get("type") != "function":
        raise supported("tool_choice.type", choice.get("type"), ("function",))
    function = choice.get("function")
    if not isinstance(function, dict):
        raise (
            missing("tool_choice.function")
            if function is None
            else type_error("tool_choice.function", "an object", function)
        )
    name = check_name(function.get("name"), "tool_choice.function.name")
    if name not in {tool["function"]["name"] for tool in tools}:
        raise Invalid(
            f"Invalid value for 'tool_choice': function '{name}' is not among the 'tools'.",
            code="invalid_value",
            param="tool_choice.function.name",
        )
    return {"type": "function", "function": {"name": name}}


def check_parallel_tool_calls(value: Any, tools: list[dict[str, Any]] | None) -> bool:
    """Whether several calls may come in one answer (true unless said otherwise)."""
    if value is None:
        return True
    if not isinstance(value, bool):
        raise type_error("parallel_tool_calls", "a boolean", value)
    if not tools:
        raise Invalid(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
            "specified.",
            code="invalid_value",
            param="parallel_tool_calls",
        )
    return value


def check_response_format(value: Any, mentions_json: bool) -> dict[str, Any] | None:
    """{"type": "text"} (None: plain text), {"type": "json_object"} or {"type": "json_schema", "json_schema": {…}}.

    `mentions_json`: whether the messages say "JSON", which OpenAI requires for json_object."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error("response_format", "an object", value)
    kind = value.get("type")
    if kind is None:
        raise missing("response_format.type")
    if kind not in RESPONSE_FORMATS:
        raise supported("response_format.type", kind, RESPONSE_FORMATS)
    if kind == "text":
        return None
    if kind == "json_object":
        if not mentions_json:
            raise Invalid(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
        return {"type": "json_object"}
    spec = value.get("json_schema")
    if spec is None:
        raise missing("response_format.json_schema")
    if not isinstance(spec, dict):
        raise type_error("response_format.json_schema", "an object", spec)
    name = check_name(spec.get("name"), "response_format.json_schema.name")
    strict = _strict_flag(spec.get("strict"), "response_format.json_schema.strict")
    out: dict[str, Any] = {"name": name, "strict": strict}
    if isinstance(spec.get("description"), str):
        out["description"] = spec["description"]
    if spec.get("schema") is not None:
        out["schema"] = check_json_schema(
            spec["schema"],
            "response_format.json_schema.schema",
            f"response_format '{name}'",
            strict=strict,
            code="invalid_json_schema",
        )
    return {"type": "json_schema", "json_schema": out}
