"""Size limits of lines, examples, messages and uploads (their settings are documented in app/config.py).

Over-limit content is refused, never stored flagged: a 20 MB example cost the launch check 42 s and 2 GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.datasets.json_limits import MAX_JSON_DEPTH, nesting_depth_exceeds
from app.datasets.validation.checks import json_encoder

_dumps = json_encoder()  # the stored (and exported) JSON text: ASCII, non-ASCII characters escaped


@dataclass(frozen=True)
class Limits:
    """The limits in force (plain data for the services); the defaults are the settings' defaults."""

    upload_bytes: int = 4 * 1024**3
    line_bytes: int = 2 * 1024**2
    example_bytes: int = 1024**2
    message_chars: int = 256_000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits a Settings object sets."""
        return cls(
            upload_bytes=settings.max_upload_bytes,
            line_bytes=settings.max_line_bytes,
            example_bytes=settings.max_example_bytes,
            message_chars=settings.max_message_chars,
        )


def message_chars(message: Any) -> int:
    """Characters of a message's text: its content string, or the text parts of a content list."""
    if not isinstance(message, dict):
        return 0
    content = message.get("content")
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return 0


def longest_message(messages: Any, limit: int) -> tuple[int, int] | None:
    """(index, characters) of the first message longer than `limit` characters, or None."""
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            n = message_chars(message)
            if n > limit:
                return i, n
    return None


def too_long_text(index: int, chars: int, limits: Limits) -> str:
    """The sentence for a message over max_message_chars."""
    return (
        f"Message {index + 1} has {chars:,} characters, over the limit of {limits.message_chars:,} "
        "(setting max_message_chars)."
    )


def too_large_text(size: int, limits: Limits) -> str:
    """The sentence for an example over max_example_bytes."""
    return (
        f"The example is {size:,} bytes as JSON, over the limit of {limits.example_bytes:,} "
        "(setting max_example_bytes)."
    )


def stored_size(messages: str, tools: str | None, extra: str | None) -> int:
    """An example's size: its stored JSON texts together (about the length of its line in an export)."""
    return len(messages) + (len(tools) if tools is not None else 0) + (len(extra) if extra is not None else 0)


def non_finite_path(value: Any) -> str | None:
    """Where a NaN or infinite number sits in parsed JSON (`messages[0].weight`), or None: JSON cannot carry one."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path or "value"
        elif isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


@dataclass(frozen=True)
class Refusal:
    """Why an example cannot be stored: a stable code, a plain sentence, and the field it is about."""

    code: str
    message: str
    param: str


def refusal(record: dict[str, Any], limits: Limits | None) -> Refusal | None:
    """Why a chat record (`messages`, optional `tools`, other top-level keys) cannot be stored, or None.

    Depth and non-finite numbers are always checked (they break JSON itself); sizes only when `limits` is given.
    """
    if nesting_depth_exceeds(record):
        return Refusal(
            "too_deep", f"The example nests lists or objects more than {MAX_JSON_DEPTH} levels deep.", "messages"
        )
    where = non_finite_path(record)
    if where is not None:
        return Refusal(
            "non_finite_number",
            f"`{where}` is a number JSON cannot carry (NaN, Infinity, or too large, such as 1e400).",
            where,
        )
    if limits is None:
        return None
    messages = record.get("messages")
    found = longest_message(messages, limits.message_chars)
    if found is not None:
        return Refusal("message_too_long", too_long_text(*found, limits), f"messages[{found[0]}].content")
    tools = record.get("tools")
    extra = {k: v for k, v in record.items() if k != "messages" and k != "tools"}
    if "tools" in record and tools is None:
        extra["tools"] = None
    size = stored_size(_dumps(messages), None if tools is None else _dumps(tools), _dumps(extra) if extra else None)
    if size > limits.example_bytes:
        return Refusal("example_too_large", too_large_text(size, limits), "messages")
    return None
