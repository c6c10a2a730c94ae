"""Where examples hold personal data or secrets, each shown only partly: the editor's note and the PII list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.datasets.datasets import get_dataset
from app.datasets.fixes.bulk import message_rows
from app.datasets.quality.sensitive import scan_messages

LISTED = 200  # examples the PII list shows


@dataclass
class Found:
    """One finding: in which message, what it is, and quality's masked preview of it (never the value in full)."""

    where: str
    label: str
    shown: str


@dataclass
class SensitiveExample:
    """An example with what was found in it."""

    example_id: int
    position: int
    found: list[Found] = field(default_factory=list)


def sensitive_in_example(example: Any) -> list[Found]:
    """Every finding in an example's messages (an Example or a row of its message columns; a preference example's
    answers are counted on after its input)."""
    listed: list[Any] = list(example.messages or [])
    for name in ("preferred_output", "non_preferred_output"):
        listed += list(getattr(example, name) or [])
    out: list[Found] = []
    for index, finding, shown in scan_messages(listed):
        message = listed[index]
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        out.append(Found(f"message {index + 1} ({role})", finding.label, shown))
    return out


def sensitive_examples(session: Session, dataset_id: int, limit: int = LISTED) -> tuple[int, list[SensitiveExample]]:
    """How many of the dataset's examples hold personal data or secrets, and the first `limit` with their findings."""
    get_dataset(session, dataset_id)
    total = 0
    listed: list[SensitiveExample] = []
    for row in message_rows(session, dataset_id):
        found = sensitive_in_example(row)
        if found:
            total += 1
            if len(listed) < limit:
                listed.append(SensitiveExample(int(row.id), int(row.position), found))
    return total, listed
