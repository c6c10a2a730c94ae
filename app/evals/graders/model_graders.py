"""OpenAI's judge graders: `score_model` (the judge gives a number) and `label_model` (the judge picks a label).

The grader renders its message templates with the item and the sample, asks the judge (any model Tuneboard can chat
with, given by the caller as a `Judge`), and reads the reply. OpenAI's judges answer through structured outputs;
ours reply in free text, so the reply is read leniently: for a score, a JSON `{"score": x}` (or `{"result": x}`),
else a number after the word "score", else the first number; for a label, the reply itself (exactly, then ignoring
case), else the label named first in it. A reply that can't be read, a score outside the range, or a judge that
fails makes an error result (counted apart from failures), never an exception.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from app.errors import DomainError, Invalid
from app.evals.graders.base import GraderResult, Judge, error_result, excerpt, passed_result
from app.evals.graders.fields import check_keys, is_number, name_field, number_field, string_list, text_field
from app.evals.templating import check_messages, render_messages, strip_code_fence

SCORE_TYPE = "score_model"
LABEL_TYPE = "label_model"
SCORE_FIELDS = ("type", "name", "model", "input", "range", "pass_threshold", "sampling_params")
SCORE_REQUIRED = ("type", "name", "model", "input")
LABEL_FIELDS = ("type", "name", "model", "input", "labels", "passing_labels")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SAMPLING_PARAMS = ("seed", "top_p", "temperature", "max_completions_tokens", "reasoning_effort")

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SCORE_WORD = re.compile(r"\bscore\b\W{0,4}(" + _NUMBER + ")", re.IGNORECASE)
_FIRST_NUMBER = re.compile(_NUMBER)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)


def _common(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The fields both judge graders share: name, model and input messages."""
    model = text_field(config, "model", param, non_empty=True)
    check_messages(config["input"], f"{param}.input")
    messages = copy.deepcopy(config["input"])
    return {"type": config["type"], "name": name_field(config, param), "model": model, "input": messages}


def _sampling_params(value: Any, param: str) -> dict[str, Any]:
    """OpenAI's sampling_params for a score_model grader, checked (each may be null)."""
    if not isinstance(value, dict):
        raise Invalid("sampling_params is an object.", param=param)
    for key, entry in value.items():
        where = f"{param}.{key}"
        if key not in SAMPLING_PARAMS:
            raise Invalid(f"Unknown sampling parameter {key!r}; it takes {', '.join(SAMPLING_PARAMS)}.", param=where)
        if entry is None:
            continue
        if key == "seed" and not (isinstance(entry, int) and not isinstance(entry, bool)):
            raise Invalid("seed is an integer.", param=where)
        if key == "top_p":
            number_field(entry, where, low=0, high=1)
        if key == "temperature":
            number_field(entry, where, low=0, high=2)
        if key == "max_completions_tokens" and not (
            isinstance(entry, int) and not isinstance(entry, bool) and entry > 0
        ):
            raise Invalid("max_completions_tokens is a whole number of at least 1.", param=where)
        if key == "reasoning_effort" and entry not in REASONING_EFFORTS:
            raise Invalid(f"reasoning_effort is one of {', '.join(REASONING_EFFORTS)}.", param=where)
    return dict(value)


def validate_score_model(config: dict[str, Any], param: str) -> dict[str, Any]:
    """A score_model config checked and normalized; range defaults to [0, 1], pass_threshold to its middle."""
    check_keys(config, SCORE_FIELDS, SCORE_REQUIRED, param)
    normalized = _common(config, param)
    bounds = config.get("range", [0, 1])
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(is_number(bound) for bound in bounds)):
        raise Invalid("range is two numbers, [lowest, highest].", param=f"{param}.range")
    low, high = float(bounds[0]), float(bounds[1])
    if low >= high:
        raise Invalid("range's first number is below its second.", param=f"{param}.range")
    normalized["range"] = [low, high]
    threshold = config.get("pass_threshold", (low + high) / 2)
    normalized["pass_threshold"] = number_field(threshold, f"{param}.pass_threshold", low=low, high=high)
    if "sampling_params" in config:
        normalized["sampling_params"] = _sampling_params(config["sampling_params"], f"{param}.sampling_params")
    return normalized


def validate_label_model(config: dict[str, Any], param: str) -> dict[str, Any]:
    """A label_model config checked and normalized; passing_labels must be among the labels."""
    check_keys(config, LABEL_FIELDS, LABEL_FIELDS, param)
    normalized = _common(config, param)
    labels = string_list(config, "labels", param, non_empty=True)
    passing = string_list(config, "passing_labels", param, non_empty=True)
    strays = [label for label in passing if label not in labels]
    if strays:
        raise Invalid(
            f"passing_labels must be among the labels ({', '.join(labels)}); {strays[0]!r} is not.",
            param=f"{param}.passing_labels",
        )
    return {**normalized, "labels": labels, "passing_labels": passing}


def _ask(
    config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any], judge: Judge | None
) -> str | GraderResult:
    """The judge's reply to the rendered messages, or an error result saying why there is none."""
    if judge is None:
        return error_result(config, f"No judge to ask: a {config['type']} grader needs a model to chat with.")
    messages: list[dict[str, Any]] = list(render_messages(config["input"], item, sample))
    try:
        return judge(config["model"], messages)
    except DomainError as exc:
        return error_result(config, f"The judge {config['model']} failed: {exc.message}")
    except Exception as exc:  # a judge's failure is this item's error, not the whole run's
        return error_result(config, f"The judge {config['model']} failed: {type(exc).__name__}: {exc}")


def _plain_reply(reply: str) -> str:
    """The reply without a reasoning model's <think> block and without a code fence around it."""
    return strip_code_fence(_THINKING.sub("", reply).strip()).strip()


def _json_field(text: str, keys: tuple[str, ...]) -> Any:
    """The first of `keys` found in the JSON object the text is or holds, else None."""
    candidates = [text, *_JSON_OBJECT.findall(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            for key in keys:
                if key in value:
                    return value[key]
    return None


def parse_score(reply: str) -> float | None:
    """The number a judge's reply gives as its score, or None when it gives none."""
    text = _plain_reply(reply)
    value = _json_field(text, ("score", "result"))
    if is_number(value):
        return float(value)
    after_word = _SCORE_WORD.search(text)
    if after_word:
        return float(after_word.group(1))
    first = _FIRST_NUMBER.search(text)
    return float(first.group(0)) if first else None


def parse_label(reply: str, labels: list[str]) -> str | None:
    """The label a judge's reply picks: the reply itself, else the label named first in it; None if none is."""
    text = _plain_reply(reply)
    value = _json_field(text, ("label", "result"))
    if isinstance(value, str):
        text = value
    bare = text.strip().strip("\"'`*.!").strip()
    exact = [label for label in labels if label == bare] or [
        label for label in labels if label.casefold() == bare.casefold()
    ]
    if exact:
        return exact[0]
    found: list[tuple[int, int, str]] = []
    for label in labels:
        match = re.search(r"(?<!\w)" + re.escape(label) + r"(?!\w)", text, re.IGNORECASE)
        if match:
            found.append((match.start(), -len(label), label))
    return min(found)[2] if found else None


def grade_score_model(
    config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any], judge: Judge | None
) -> GraderResult:
    """Ask the judge for a score; pass when it is at or above pass_threshold."""
    reply = _ask(config, item, sample, judge)
    if isinstance(reply, GraderResult):
        return reply
    score = parse_score(reply)
    low, high = config["range"]
    if score is None:
        return error_result(config, "The judge's reply holds no score.", reply=excerpt(reply))
    if not low <= score <= high:
        return error_result(
            config, f"The judge's score {score:g} is outside the range [{low:g}, {high:g}].", reply=excerpt(reply)
        )
    threshold = config["pass_threshold"]
    details = {"reply": excerpt(reply), "range": [low, high], "pass_threshold": threshold}
    return GraderResult(config["name"], SCORE_TYPE, score, score >= threshold, None, details)


def grade_label_model(
    config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any], judge: Judge | None
) -> GraderResult:
    """Ask the judge for a label; pass when it is one of passing_labels."""
    reply = _ask(config, item, sample, judge)
    if isinstance(reply, GraderResult):
        return reply
    label = parse_label(reply, config["labels"])
    if label is None:
        return error_result(config, "The judge's reply names none of the labels.", reply=excerpt(reply))
    return passed_result(config, label in config["passing_labels"], label=label, reply=excerpt(reply))
