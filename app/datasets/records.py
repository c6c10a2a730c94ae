"""An example record (a chat JSONL object, or a preference pair in OpenAI's DPO shape) → the Example columns."""

from __future__ import annotations

from typing import Any

from app.datasets.kinds import kind_mismatch
from app.datasets.limits import Limits, refusal
from app.datasets.validation.preference import input_of, is_preference_record, pair_extra
from app.errors import Invalid
from app.tables.dataset import PREFERENCE, SUPERVISED, Dataset

ANSWER_KEYS = ("preferred_output", "non_preferred_output")


def record_parts(record: Any, limits: Limits | None = None) -> dict[str, Any]:
    """Split a chat record into the Example columns messages / tools / extra (other top-level keys verbatim), or a
    preference record into those and its two answers (pair_parts).

    What JSON cannot hold (absurd depth, NaN or infinite numbers) is refused with the field it is about; so is
    what is over `limits` (message and example sizes), when given.
    """
    if is_preference_record(record):
        return pair_parts(record, limits)
    if not isinstance(record, dict):
        raise Invalid("An example must be a JSON object with a `messages` list.", param="messages")
    if not isinstance(record.get("messages"), list):
        raise Invalid("An example needs a `messages` list.", param="messages")
    refused = refusal(record, limits)
    if refused is not None:
        raise Invalid(refused.message, code=refused.code, param=refused.param)
    extra = {k: v for k, v in record.items() if k not in ("messages", "tools")}
    tools = record.get("tools")
    if "tools" in record and tools is None:
        extra["tools"] = None  # an explicit null survives export
    return {"messages": record["messages"], "tools": tools, "extra": extra or None}


def pair_parts(record: dict[str, Any], limits: Limits | None = None) -> dict[str, Any]:
    """A preference record's columns: its input's messages and tools, its two answers (lists), other keys."""
    messages, tools = input_of(record)
    if not isinstance(messages, list):
        raise Invalid("A preference example needs an `input` with a `messages` list.", param="input")
    answers = {key: record.get(key) or [] for key in ANSWER_KEYS}
    for key, answer in answers.items():
        if not isinstance(answer, list):
            raise Invalid(f"`{key}` must be a list of one assistant message.", param=key)
    extra = pair_extra(record) or {}  # with the input's keys besides messages and tools
    # Sizes, depth and numbers are checked as for one chat example holding the input and both answers.
    flat = {"messages": [*messages, *answers["preferred_output"], *answers["non_preferred_output"]], **extra}
    if tools is not None:
        flat["tools"] = tools
    refused = refusal(flat, limits)
    if refused is not None:
        raise Invalid(refused.message, code=refused.code, param=refused.param)
    return {"messages": messages, "tools": tools, "extra": extra or None, **answers}


def record_kind(record: Any) -> str:
    """The kind of dataset a record belongs in."""
    return PREFERENCE if is_preference_record(record) else SUPERVISED


def check_fits(dataset: Dataset, record: Any) -> None:
    """Refuse (Invalid) a record of the other kind than its dataset's: pairs go only into preference datasets."""
    kind = record_kind(record)
    if kind != dataset.kind:
        raise kind_mismatch(dataset.kind, kind)


def form_version(value: Any) -> int | None:
    """The version a form says it edited: None if missing (a stale save), Invalid if not a whole number."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    # ASCII digits only: "²" passes str.isdigit() but int() refuses it.
    if not (text.isascii() and text.isdigit()):
        raise Invalid("The version must be a whole number (the one shown in the editor).", param="version")
    return int(text)
