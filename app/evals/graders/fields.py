"""Field checks shared by the graders' validators: each raises app.errors.Invalid naming the field."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from app.errors import Invalid

MAX_NAME_CHARS = 256
MAX_TEMPLATE_CHARS = 100_000


def check_keys(config: dict[str, Any], allowed: Iterable[str], required: Iterable[str], param: str) -> None:
    """Refuse fields a grader type doesn't define and require the ones it needs."""
    allowed = set(allowed)
    kind = config["type"]
    for key in config:
        if key not in allowed:
            takes = ", ".join(sorted(allowed - {"type"}))
            raise Invalid(f"Unknown field {key!r} for a {kind} grader; it takes {takes}.", param=f"{param}.{key}")
    for key in required:
        if key not in config:
            raise Invalid(f"A {kind} grader needs {key}.", param=f"{param}.{key}")


def name_field(config: dict[str, Any], param: str) -> str:
    """The grader's name: a non-empty string of at most 256 characters."""
    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("Give the grader a name.", param=f"{param}.name")
    if len(name) > MAX_NAME_CHARS:
        raise Invalid(f"A grader's name is at most {MAX_NAME_CHARS} characters.", param=f"{param}.name")
    return name


def text_field(config: dict[str, Any], key: str, param: str, *, default: str | None = None, non_empty=False) -> str:
    """A string field (a template, a pattern…); `default` when absent, if the field is optional."""
    value = config.get(key, default)
    if not isinstance(value, str):
        raise Invalid(f"{key} is a string.", param=f"{param}.{key}")
    if non_empty and not value:
        raise Invalid(f"{key} can't be empty.", param=f"{param}.{key}")
    if len(value) > MAX_TEMPLATE_CHARS:
        raise Invalid(f"{key} is at most {MAX_TEMPLATE_CHARS:,} characters.", param=f"{param}.{key}")
    return value


def choice_field(
    config: dict[str, Any], key: str, choices: Iterable[str], param: str, default: str | None = None
) -> str:
    """A string field that must be one of `choices`."""
    choices = list(choices)
    value = config.get(key, default)
    if value not in choices:
        raise Invalid(f"{key} is one of {', '.join(choices)}.", param=f"{param}.{key}")
    return str(value)


def is_number(value: Any) -> bool:
    """Whether the value is a finite int or float (booleans are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number_field(value: Any, param: str, *, low: float | None = None, high: float | None = None) -> float:
    """A finite number within [low, high] when those are given."""
    if not is_number(value):
        raise Invalid("Give a number.", param=param)
    if low is not None and value < low:
        raise Invalid(
            f"Give a number of at least {low:g}" + (f" and at most {high:g}." if high is not None else "."), param=param
        )
    if high is not None and value > high:
        raise Invalid(f"Give a number of at most {high:g}.", param=param)
    return float(value)


def string_list(config: dict[str, Any], key: str, param: str, *, non_empty: bool) -> list[str]:
    """A list of distinct non-empty strings."""
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(entry, str) and entry for entry in value):
        raise Invalid(f"{key} is a list of non-empty strings.", param=f"{param}.{key}")
    if non_empty and not value:
        raise Invalid(f"{key} can't be empty.", param=f"{param}.{key}")
    if len(set(value)) != len(value):
        raise Invalid(f"{key} lists a value twice.", param=f"{param}.{key}")
    return list(value)
