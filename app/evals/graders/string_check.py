"""OpenAI's `string_check` grader: compare the rendered input with the rendered reference.

Operations, as OpenAI defines them: `eq` equal, `ne` not equal (both case-sensitive), `like` the input contains
the reference (case-sensitive), `ilike` the input contains the reference ignoring case. Score 1 when the check
holds, else 0.
"""

from __future__ import annotations

from typing import Any

from app.evals.graders.base import GraderResult, excerpt, passed_result
from app.evals.graders.fields import check_keys, choice_field, name_field, text_field
from app.evals.templating import render

TYPE = "string_check"
OPERATIONS = ("eq", "ne", "like", "ilike")
FIELDS = ("type", "name", "input", "reference", "operation")


def validate(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The config checked and normalized (Invalid names the first wrong field)."""
    check_keys(config, FIELDS, FIELDS, param)
    return {
        "type": TYPE,
        "name": name_field(config, param),
        "input": text_field(config, "input", param),
        "reference": text_field(config, "reference", param),
        "operation": choice_field(config, "operation", OPERATIONS, param),
    }


def check(operation: str, text: str, reference: str) -> bool:
    """Whether `text` passes `operation` against `reference`."""
    if operation == "eq":
        return text == reference
    if operation == "ne":
        return text != reference
    if operation == "like":
        return reference in text
    return reference.casefold() in text.casefold()


def grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any]) -> GraderResult:
    """Render input and reference, then apply the operation."""
    # No cap here: comparing and substring search are linear in CPython, and cutting could change the verdict.
    text = render(config["input"], item, sample)
    reference = render(config["reference"], item, sample)
    return passed_result(config, check(config["operation"], text, reference), reference=excerpt(reference))
