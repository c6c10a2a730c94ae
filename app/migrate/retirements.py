"""OpenAI's retirement facts (app/data/openai_retirements.toml): when fine-tuning ends and base snapshots retire."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from app.providers.openai_account import base_of
from app.tables.common import utcnow

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "openai_retirements.toml"


@dataclass(frozen=True)
class Retirement:
    """When a model stops answering, and how many days are left from `today` (negative once it has passed)."""

    model: str
    base_model: str
    shutdown: date
    days_left: int
    replacement: str | None = None

    @property
    def retired(self) -> bool:
        """Whether the shutdown date has come."""
        return self.days_left <= 0


@functools.cache
def load_facts() -> dict[str, Any]:
    """The parsed facts file (read once per process)."""
    with TABLE_PATH.open("rb") as f:
        return tomllib.load(f)


def facts_date() -> str:
    """When the facts were last checked."""
    return str(load_facts().get("as_of", ""))


def fine_tuning_cutoff() -> date:
    """The last day OpenAI accepts new fine-tuning jobs."""
    return date.fromisoformat(str(load_facts()["no_new_fine_tuning_jobs_after"]))


def days_until(day: date, today: date | None = None) -> int:
    """Days from today (UTC date unless given) to `day`; negative once it has passed."""
    return (day - (today or utcnow().date())).days


def retirement_of(model_id: str, today: date | None = None) -> Retirement | None:
    """When a base snapshot, or the base named in a fine-tuned id, retires; None when no date is announced."""
    base = base_of(model_id)
    for group in load_facts().get("retirements", []):
        if base in group["snapshots"]:
            shutdown = date.fromisoformat(str(group["shutdown"]))
            return Retirement(model_id, base, shutdown, days_until(shutdown, today), group.get("replacement"))
    return None
