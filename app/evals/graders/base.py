"""What every grader returns, what a judge is, and the limits every grader keeps to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# Text a grader reads is cut to this many characters: a runaway output can't make grading slow.
MAX_INPUT_CHARS = 100_000
# How much of a long value (a rendered reference, a judge's reply) a result keeps in its details.
DETAIL_CHARS = 2_000


@dataclass
class GraderResult:
    """One grader's verdict on one item: a score, pass or fail, or an error (the grader could not grade)."""

    name: str
    type: str
    score: float
    passed: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return asdict(self)


class Judge(Protocol):
    """Chat with a model for a judge grader: `(model_id, messages) -> the reply's text` (raise on failure)."""

    def __call__(self, model_id: str, messages: list[dict[str, Any]], /) -> str:
        """The model's reply to the messages."""
        ...


def passed_result(config: dict[str, Any], passed: bool, **details: Any) -> GraderResult:
    """A pass/fail result scored 1 or 0."""
    return GraderResult(config["name"], config["type"], 1.0 if passed else 0.0, passed, None, details)


def error_result(config: dict[str, Any], message: str, **details: Any) -> GraderResult:
    """A result saying the grader could not grade this item (counted apart from failures)."""
    return GraderResult(config["name"], config["type"], 0.0, False, message, details)


def capped(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """The text cut to `limit` characters."""
    return text if len(text) <= limit else text[:limit]


def excerpt(text: str) -> str:
    """A long text cut for a result's details, marked where it was cut."""
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"
