"""Where an example holds personal data or secrets, each shown only partly: the editor's note."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.datasets.quality.sensitive import scan_messages
from app.tables.dataset import Example


@dataclass
class Found:
    """One finding: in which message, what it is, and quality's masked preview of it (never the value in full)."""

    where: str
    label: str
    shown: str


def sensitive_in_example(example: Example) -> list[Found]:
    """Every finding in the example's messages (a preference example's answers counted on after its input)."""
    listed: list[Any] = list(example.messages or [])
    for name in ("preferred_output", "non_preferred_output"):
        listed += list(getattr(example, name) or [])
    out: list[Found] = []
    for index, finding, shown in scan_messages(listed):
        message = listed[index]
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        out.append(Found(f"message {index + 1} ({role})", finding.label, shown))
    return out
