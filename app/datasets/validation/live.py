"""The editor's live check: format problems plus token counts and the context-limit warning for one model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.datasets.validation.checks import ExampleCheck, Problem
from app.datasets.validation.modeltable import ModelInfo, resolve_model
from app.datasets.validation.preference import check_example
from app.datasets.validation.tokens import TokenCounts, count_many


def over_limit_problem(total: int, info: ModelInfo) -> Problem | None:
    """The over_context_limit warning when `total` tokens exceed the model's training context."""
    if total <= info.context_limit:
        return None
    lost = total - info.context_limit
    return Problem(
        "over_context_limit",
        "warning",
        f"The example has {total:,} tokens; {info.name} trains on at most {info.context_limit:,}, "
        f"so the last {lost:,} tokens are cut off.",
    )


@dataclass
class LiveCheck:
    """One example's problems (format and context limit) and its token counts for one model."""

    check: ExampleCheck
    counts: TokenCounts
    model: ModelInfo

    @property
    def problems(self) -> list[Problem]:
        """Format problems, then the context-limit warning if any."""
        extra = over_limit_problem(self.counts.total, self.model)
        return [*self.check.problems, extra] if extra else list(self.check.problems)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the editor."""
        return {
            "valid": self.check.valid,
            "model": self.model.name,
            "context_limit": self.model.context_limit,
            "tokens": self.counts.as_dict() | {"exact": self.counts.exact},
            "problems": [p.as_dict() for p in self.problems],
        }


def live_check(record: Any, model: str | None = None, settings: Any = None) -> LiveCheck:
    """Check one example as the person types: format problems, token counts, context limit."""
    info = resolve_model(model, settings)
    return LiveCheck(check_example(record), count_many([record], info, settings)[0], info)
