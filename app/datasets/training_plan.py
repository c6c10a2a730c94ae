"""What a job launched on a dataset trains and validates on: the one rule the launch, its snapshots and the
dataset page share.

A job trains on the valid examples whose split is "train" or unset; it validates on the valid "validation"
examples when the dataset has any example in that split (an invalid one refuses the launch), otherwise on none.
Invalid examples are never written to a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import Session, col

from app.tables import Example

VALIDATION_SPLIT = "validation"


def trains_on_split(split: str | None) -> bool:
    """Whether an example in this split is trained on (split "train" or none)."""
    return split is None or split == "train"


def train_condition() -> ColumnElement[bool]:
    """The SQL twin of `trains_on_split`, for the snapshot's query."""
    return or_(col(Example.split) == "train", col(Example.split).is_(None))


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class TrainingPlan:
    """The examples a job launched on a dataset (with no other validation source) uses, and those it leaves out."""

    train_split: int = 0  # valid examples with split "train"
    unassigned: int = 0  # valid examples without a split (trained on too)
    validation: int = 0  # valid examples with split "validation"
    has_validation_split: bool = False  # any example, valid or not, in the validation split
    invalid: int = 0  # invalid examples, left out of every snapshot
    other: int = 0  # valid examples in a split other than train/validation: never used

    @property
    def train(self) -> int:
        """How many examples the training snapshot holds."""
        return self.train_split + self.unassigned

    @property
    def validates_on(self) -> int | None:
        """How many examples the validation snapshot holds, or None when the job gets none."""
        return self.validation if self.has_validation_split else None

    def sentence(self) -> str:
        """The plan in one plain sentence, as the dataset page shows it."""
        if self.train_split and self.unassigned:
            source = f"{self.train_split:,} train and {self.unassigned:,} without a split"
            trains = f"trains on {_plural(self.train, 'example')} ({source})"
        elif self.unassigned:
            trains = f"trains on {_plural(self.train, 'example')} (no split set: all valid examples)"
        else:
            trains = f"trains on {_plural(self.train, 'train example')}"
        validates = "validates on none" if self.validates_on is None else f"validates on {self.validates_on:,}"
        text = f"A job launched here {trains} and {validates}."
        if self.invalid:
            text += f" {_plural(self.invalid, 'invalid example')} left out (fix or delete them to launch)."
        if self.other:
            text += f" {_plural(self.other, 'example')} in another split left out."
        return text


def training_plan(session: Session, dataset_id: int) -> TrainingPlan:
    """Count what a job launched on `dataset_id` would train and validate on (one indexed GROUP BY)."""
    query = (
        select(col(Example.split), col(Example.valid), func.count())
        .where(col(Example.dataset_id) == dataset_id)
        .group_by(col(Example.split), col(Example.valid))
    )
    counts = {"train_split": 0, "unassigned": 0, "validation": 0, "invalid": 0, "other": 0}
    has_validation = False
    for split, valid, n in session.execute(query).all():
        has_validation = has_validation or split == VALIDATION_SPLIT
        if not valid:
            key = "invalid"
        elif trains_on_split(split):
            key = "unassigned" if split is None else "train_split"
        else:
            key = "validation" if split == VALIDATION_SPLIT else "other"
        counts[key] += n
    return TrainingPlan(has_validation_split=has_validation, **counts)
