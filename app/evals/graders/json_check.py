"""Tuneboard's `json_check` grader: the output is JSON, has the required keys, and matches a JSON Schema.

`{"type": "json_check", "name", "input": "{{sample.output_text}}", "required_keys": [...], "schema": {...}}`.
The input may be wrapped in a Markdown code fence (```json … ```). Score 1 when every check holds, else 0 with
the reason in the details. The schema is checked when the eval is created; its `$ref`s must point inside it (no
schema is fetched), and its `pattern`s pass the same nested-repeat check as `regex_check`.
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
from app.evals.graders.fields import check_keys, name_field, string_list, text_field
from app.evals.graders.regex_check import check_pattern
from app.evals.templating import render, strip_code_fence

TYPE = "json_check"
FIELDS = ("type", "name", "input", "required_keys", "schema")
REQUIRED = ("type", "name")
DEFAULT_INPUT = "{{sample.output_text}}"
REF_KEYS = ("$ref", "$dynamicRef")


def _validator_class(schema: dict[str, Any]) -> Any:
    """The jsonschema validator class for the schema's `$schema` (draft 2020-12 when none is named)."""
    return validators.validator_for(schema, default=validators.Draft202012Validator)


def check_schema(schema: Any, param: str) -> None:
    """Raise Invalid unless `schema` is a valid JSON Schema object with local refs and safe patterns."""
    if not isinstance(schema, dict):
        raise Invalid("schema is a JSON Schema object.", param=param)
    try:
        _validator_class(schema).check_schema(schema)
    except schema_errors.SchemaError as exc:
        raise Invalid(f"Not a valid JSON Schema: {excerpt(exc.message)}", param=param) from None
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key in REF_KEYS:
            ref = node.get(key)
            if isinstance(ref, str) and not ref.startswith("#"):
                raise Invalid(f"{key} must point inside the schema (#/…); {ref!r} would be fetched.", param=param)
        if isinstance(node.get("pattern"), str):
            check_pattern(node["pattern"], "", param)
        if isinstance(node.get("patternProperties"), dict):
            for pattern in node["patternProperties"]:
                check_pattern(pattern, "", param)
        stack.extend(node.values())


def validate(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The config checked and normalized (Invalid names the first wrong field)."""
    check_keys(config, FIELDS, REQUIRED, param)
    normalized: dict[str, Any] = {
        "type": TYPE,
        "name": name_field(config, param),
        "input": text_field(config, "input", param, default=DEFAULT_INPUT),
        "required_keys": string_list(config, "required_keys", param, non_empty=False),
    }
    if config.get("schema") is not None:
        check_schema(config["schema"], f"{param}.schema")
        normalized["schema"] = copy.deepcopy(config["schema"])
    return normalized


def _failed(config: dict[str, Any], reason: str) -> GraderResult:
    """A failing result that says why."""
    return passed_result(config, False, reason=reason)


def grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any]) -> GraderResult:
    """Parse the rendered input, then check the required keys and the schema."""
    text = render(config["input"], item, sample)
    if len(text) > MAX_INPUT_CHARS:
        return _failed(config, f"The input is longer than {MAX_INPUT_CHARS:,} characters.")
    try:
        value = json.loads(strip_code_fence(text))
    except ValueError as exc:
        return _failed(config, f"Not JSON: {exc}.")
    except RecursionError:
        return _failed(config, "Not JSON that can be read: it nests too deep.")
    keys = config.get("required_keys") or []
    if keys and not isinstance(value, dict):
        return _failed(config, f"Not a JSON object, so none of the required keys: {', '.join(keys)}.")
    missing = [key for key in keys if key not in value]
    if missing:
        return _failed(config, f"Missing keys: {', '.join(missing)}.")
    schema = config.get("schema")
    if schema is not None:
        validator = _validator_class(schema)(schema, registry=referencing.Registry())
        try:
            error = schema_errors.best_match(validator.iter_errors(value))
        except referencing.exceptions.Unresolvable as exc:
            return error_result(config, f"The schema refers to something it doesn't hold: {exc}.")
        except RecursionError:
            return error_result(config, "The output nests too deep to check against the schema.")
        if error is not None:
            return _failed(config, f"At {error.json_path}: {excerpt(error.message)}")
    return passed_result(config, True)
