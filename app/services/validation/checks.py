"""Format checks of one example. Minimal first version; issue #3 extends it to every documented code."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

ROLES = {"system", "user", "assistant", "tool", "developer"}


@dataclass(frozen=True)
class Problem:
    """One finding: a stable code, error or warning, a plain message, and which message it is about."""

    code: str
    level: str  # "error" | "warning"
    message: str
    message_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in Example.problems."""
        return {"code": self.code, "level": self.level, "message": self.message, "message_index": self.message_index}


@dataclass
class ExampleCheck:
    """The result of checking one example."""

    problems: list[Problem] = field(default_factory=list)
    n_messages: int = 0

    @property
    def valid(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(p.level == "error" for p in self.problems)

    @property
    def n_errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    @property
    def n_warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)


def check_record(record: Any) -> ExampleCheck:
    """Check one example object (as parsed from a JSONL line)."""
    result = ExampleCheck()
    if not isinstance(record, dict):
        result.problems.append(Problem("data_type", "error", "The example is not a JSON object."))
        return result
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        result.problems.append(Problem("missing_messages_list", "error", "The example has no `messages` list."))
        return result
    result.n_messages = len(messages)
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            result.problems.append(Problem("message_missing_key", "error", "Message has no `role`.", i))
            continue
        if message["role"] not in ROLES:
            result.problems.append(Problem("unrecognized_role", "error", f"Unknown role {message['role']!r}.", i))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        result.problems.append(
            Problem("example_missing_assistant_message", "error", "The example has no assistant message.")
        )
    return result


def content_hash(record: dict[str, Any]) -> str:
    """A hash of the example's content, for duplicate and train/validation leakage checks."""
    canonical = json.dumps(
        {"messages": record.get("messages"), "tools": record.get("tools")}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def search_text(messages: Any) -> str:
    """Lower-cased text of every message, for substring search."""
    if not isinstance(messages, list):
        return ""
    parts = []
    for m in messages:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts).lower()


def apply_check(example) -> ExampleCheck:
    """Recompute an Example's cached validation columns from its content; returns the check."""
    record = example.to_record()
    result = check_record(record)
    example.valid = result.valid
    example.n_errors = result.n_errors
    example.n_warnings = result.n_warnings
    example.problems = [p.as_dict() for p in result.problems]
    example.n_messages = result.n_messages
    example.content_hash = content_hash(record)
    example.search_text = search_text(example.messages)
    example.token_counts = None  # recomputed lazily by the report (issue #3)
    return result
