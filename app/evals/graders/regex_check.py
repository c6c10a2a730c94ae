"""Tuneboard's `regex_check` grader: does the rendered input match a regular expression?

`{"type": "regex_check", "name", "input": "{{sample.output_text}}", "pattern", "flags": "" | any of "ims",
"operation": "match" (the whole input matches) | "search" (somewhere in it) | "not_search" (nowhere in it)}`.

Bounded time: a backtracking engine can take exponential time on patterns like `(a+)+`. Three limits keep a
pattern from stalling the eval worker: the pattern is at most 1,000 characters; a repeated group that repeats
inside (`(a+)+`, `(\\w*\\s?)*`) is refused when the eval is created (rewrite it without the nested repeat); and the
match runs on the `regex` engine (re-compatible syntax) with a time limit, so a slow pattern the simple check
misses (`(a|aa)+$`) ends as an error result after a second instead of running on. The input is cut to 100,000
characters.
"""

from __future__ import annotations

import re
from typing import Any

import regex

from app.errors import Invalid
from app.evals.graders.base import GraderResult, capped, error_result, excerpt, passed_result
from app.evals.graders.fields import check_keys, choice_field, name_field, text_field
from app.evals.templating import render

TYPE = "regex_check"
OPERATIONS = ("match", "search", "not_search")
FIELDS = ("type", "name", "input", "pattern", "flags", "operation")
REQUIRED = ("type", "name", "pattern")
DEFAULT_INPUT = "{{sample.output_text}}"
MAX_PATTERN_CHARS = 1_000
TIMEOUT_S = 1.0
FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}

# A quantifier at the start of the text: *, +, ?, {n}, {n,}, {n,m}, then an optional lazy/possessive mark.
_QUANTIFIER = re.compile(r"(?:[*+?]|\{(\d*)(?:(,)(\d*))?\})[?+]?")


def _quantifier_at(pattern: str, index: int) -> tuple[bool, bool, int]:
    """(count varies and can exceed one, count can exceed one, length: 0 for none) of a quantifier at `index`."""
    match = _QUANTIFIER.match(pattern, index)
    if match is None:
        return False, False, 0
    text = match.group(0)
    if text[0] in "*+":
        return True, True, len(text)
    if text[0] == "?":
        return False, False, len(text)
    low_text, comma, high_text = match.group(1), match.group(2), match.group(3)
    if comma is None:
        if not low_text:
            return False, False, 0  # "{}" is a literal
        return False, int(low_text) > 1, len(text)
    low = int(low_text or 0)
    if not high_text:
        return True, True, len(text)
    high = int(high_text)
    return high > max(low, 1), high > 1, len(text)


def _class_end(pattern: str, index: int) -> int:
    """The index just past the character class `[...]` that opens at `index`."""
    index += 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def has_nested_repeat(pattern: str) -> bool:
    """Whether a group repeated more than once holds a repeat of varying count, like `(a+)+` or `(a*){5}`."""
    groups: list[bool] = []  # for each open group: whether something inside it repeats a varying number of times
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
        elif char == "[":
            index = _class_end(pattern, index)
        elif char == "(":
            groups.append(False)
            index += 1
            if pattern.startswith("?", index):  # (?:…), (?P<name>…), lookarounds: not a quantifier
                index += 1
        elif char == ")":
            inner = groups.pop() if groups else False
            varies, many, length = _quantifier_at(pattern, index + 1)
            if inner and many:
                return True
            if groups and (inner or varies):
                groups[-1] = True
            index += 1 + length
        else:
            varies, _, length = _quantifier_at(pattern, index)
            if varies and groups:
                groups[-1] = True
            index += length or 1
    return False


def check_pattern(pattern: str, flags: str, param: str) -> None:
    """Raise Invalid unless the pattern is short, compiles, and has no nested repeat."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise Invalid(f"A pattern is at most {MAX_PATTERN_CHARS:,} characters.", param=param)
    try:
        regex.compile(pattern, _flag_bits(flags))
    except regex.error as exc:
        raise Invalid(f"Not a valid regular expression: {exc}.", param=param) from None
    if has_nested_repeat(pattern):
        raise Invalid(
            "This pattern repeats a group that itself repeats (like (a+)+), which can take exponential time: "
            "rewrite it without the nested repeat.",
            param=param,
        )


def _flag_bits(flags: str) -> int:
    """The engine's flag bits for a flags string like "im"."""
    bits = 0
    for letter in flags:
        bits |= FLAGS[letter]
    return bits


def validate(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The config checked and normalized (Invalid names the first wrong field)."""
    check_keys(config, FIELDS, REQUIRED, param)
    flags = text_field(config, "flags", param, default="")
    if any(letter not in FLAGS for letter in flags) or len(set(flags)) != len(flags):
        raise Invalid("flags is made of the letters i, m and s, each at most once.", param=f"{param}.flags")
    pattern = text_field(config, "pattern", param, non_empty=True)
    check_pattern(pattern, flags, f"{param}.pattern")
    return {
        "type": TYPE,
        "name": name_field(config, param),
        "input": text_field(config, "input", param, default=DEFAULT_INPUT),
        "pattern": pattern,
        "flags": flags,
        "operation": choice_field(config, "operation", OPERATIONS, param, default="search"),
    }


def grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any]) -> GraderResult:
    """Match the rendered input against the pattern within the time limit."""
    text = capped(render(config["input"], item, sample))
    compiled = regex.compile(config["pattern"], _flag_bits(config["flags"]))
    operation = config["operation"]
    try:
        if operation == "match":
            found = compiled.fullmatch(text, timeout=TIMEOUT_S, concurrent=True)
        else:
            found = compiled.search(text, timeout=TIMEOUT_S, concurrent=True)
    except TimeoutError:
        return error_result(config, f"The pattern took longer than {TIMEOUT_S:g} s on this input.")
    matched = excerpt(found.group(0)) if found is not None else None
    passed = found is None if operation == "not_search" else found is not None
    return passed_result(config, passed, matched=matched)
