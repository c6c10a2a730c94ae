"""Tuneboard's `tool_call_check` grader: the answer called the right function, with the right arguments.

`{"type": "tool_call_check", "name", "function": "lookup_order" or "{{item.reference_tool_calls.0.function.name}}",
"arguments": {"mode": "equal" | "subset" | "schema", "reference": "{{item.reference_tool_calls.0.function.arguments}}"
or a JSON object, "schema": {...}}, "call": "first" | "any"}`.

The calls are the sample's `output_tools` (OpenAI's shape: arguments a JSON string). `call: "first"` (the default)
grades the answer's first call, `"any"` passes when any of its calls does. Without `arguments` only the function
name is checked. Modes: `equal`, the arguments equal the reference as JSON values (1 and 1.0 alike, true and 1 not);
`subset`, every key of the reference is in the arguments with a matching value (objects matched key by key again,
so extra keys pass; other values must be equal); `schema`, the arguments validate against the JSON Schema (checked
when the eval is created, as json_check's). A reference template is rendered, then read as JSON.
Score 1 when the check holds, else 0 with the reason in the details.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import referencing
import referencing.exceptions
from jsonschema import exceptions as schema_errors
from jsonschema import validators

from app.errors import Invalid
from app.evals.graders.base import MAX_INPUT_CHARS, GraderResult, error_result, excerpt, passed_result
from app.evals.graders.fields import check_keys, choice_field, name_field, text_field
from app.evals.graders.json_check import check_schema
from app.evals.templating import render

TYPE = "tool_call_check"
FIELDS = ("type", "name", "function", "arguments", "call")
REQUIRED = ("type", "name", "function")
MODES = ("equal", "subset", "schema")
CALLS = ("first", "any")
ARGUMENT_FIELDS = ("mode", "reference", "schema")


def _validate_arguments(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid("arguments is an object: its mode, and a reference or a schema.", param=param)
    for key in raw:
        if key not in ARGUMENT_FIELDS:
            raise Invalid(f"Unknown field {key!r} in arguments; it takes {', '.join(ARGUMENT_FIELDS)}.", param=param)
    mode = raw.get("mode")
    if mode not in MODES:
        raise Invalid(f"arguments.mode is one of {', '.join(MODES)}.", param=f"{param}.mode")
    if mode == "schema":
        if "reference" in raw:
            raise Invalid("The schema mode checks against a schema, not a reference.", param=f"{param}.reference")
        if "schema" not in raw:
            raise Invalid("The schema mode needs a schema.", param=f"{param}.schema")
        check_schema(raw["schema"], f"{param}.schema")
        return {"mode": mode, "schema": copy.deepcopy(raw["schema"])}
    if "schema" in raw:
        raise Invalid(f"The {mode} mode compares with a reference, not a schema.", param=f"{param}.schema")
    reference = raw.get("reference")
    if isinstance(reference, str):
        reference = text_field(raw, "reference", param, non_empty=True)
    elif not isinstance(reference, dict):
        raise Invalid(
            f"The {mode} mode needs a reference: a template such as "
            "{{item.reference_tool_calls.0.function.arguments}}, or a JSON object.",
            param=f"{param}.reference",
        )
    return {"mode": mode, "reference": copy.deepcopy(reference)}


def validate(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The config checked and normalized (Invalid names the first wrong field)."""
    check_keys(config, FIELDS, REQUIRED, param)
    normalized: dict[str, Any] = {
        "type": TYPE,
        "name": name_field(config, param),
        "function": text_field(config, "function", param, non_empty=True),
        "call": choice_field(config, "call", CALLS, param, default="first"),
    }
    if config.get("arguments") is not None:
        normalized["arguments"] = _validate_arguments(config["arguments"], f"{param}.arguments")
    return normalized


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(left: Any, right: Any) -> bool:
    """Equal as JSON values: numbers by value (1 == 1.0), but a boolean is never a number."""
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def json_subset(reference: Any, value: Any) -> bool:
    """Whether `value` holds what `reference` does: objects key by key (extra keys allowed), the rest equal."""
    if isinstance(reference, dict):
        return isinstance(value, dict) and all(
            key in value and json_subset(expected, value[key]) for key, expected in reference.items()
        )
    return json_equal(reference, value)


def _arguments(call: dict[str, Any]) -> tuple[Any, str | None]:
    """A call's arguments as JSON, or why they can't be read."""
    raw = (call.get("function") or {}).get("arguments")
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str):
        return None, "its arguments are missing"
    if len(raw) > MAX_INPUT_CHARS:
        return None, f"its arguments are longer than {MAX_INPUT_CHARS:,} characters"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"its arguments are not JSON ({exc})"
    except RecursionError:
        return None, "its arguments nest too deep to read"


def _check_call(
    config: dict[str, Any], call: dict[str, Any], function: str, reference: Any, validator: Any
) -> str | None:
    """Why the call doesn't pass, or None when it does."""
    name = (call.get("function") or {}).get("name")
    if name != function:
        return f"it calls {name!r}, not {function!r}"
    spec = config.get("arguments")
    if spec is None:
        return None
    arguments, problem = _arguments(call)
    if problem:
        return problem
    try:
        if spec["mode"] == "schema":
            error = schema_errors.best_match(validator.iter_errors(arguments))
            return None if error is None else f"at {error.json_path}: {excerpt(error.message)}"
        if json_equal(arguments, reference) if spec["mode"] == "equal" else json_subset(reference, arguments):
            return None
    except RecursionError:
        return "its arguments nest too deep to compare"
    word = "equal" if spec["mode"] == "equal" else "include"
    return f"its arguments {excerpt(json.dumps(arguments, ensure_ascii=False))} don't {word} the reference"


def grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any]) -> GraderResult:
    """Find the sample's call (its first, or any) of the function and check its arguments."""
    function = render(config["function"], item, sample).strip()
    if not function:
        return error_result(config, "The function name is empty for this item: the template found nothing.")
    reference: Any = None
    validator: Any = None
    spec = config.get("arguments")
    if spec is not None and spec["mode"] == "schema":
        # As json_check: draft 2020-12 unless the schema names its own, and no $ref is ever fetched.
        kind = validators.validator_for(spec["schema"], default=validators.Draft202012Validator)
        validator = kind(spec["schema"], registry=referencing.Registry())
    elif spec is not None:
        reference = spec["reference"]
        if isinstance(reference, str):
            text = render(reference, item, sample)
            try:
                reference = json.loads(text)
            except (ValueError, RecursionError):
                return error_result(
                    config, "The reference arguments are not JSON for this item.", reference=excerpt(text)
                )
    calls = [call for call in sample.get("output_tools") or [] if isinstance(call, dict)]
    called = [str((call.get("function") or {}).get("name")) for call in calls]
    if not calls:
        return passed_result(config, False, function=function, called=called, reason="The answer made no tool call.")
    problems = []
    for call in calls[:1] if config.get("call", "first") == "first" else calls:
        try:
            problem = _check_call(config, call, function, reference, validator)
        except referencing.exceptions.Unresolvable as exc:
            return error_result(config, f"The schema refers to something it doesn't hold: {exc}.")
        if problem is None:
            return passed_result(config, True, function=function, called=called)
        problems.append(problem)
    reason = "The first call fails: " if config.get("call", "first") == "first" else "No call passes: "
    return passed_result(config, False, function=function, called=called, reason=reason + "; ".join(problems))
