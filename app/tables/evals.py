"""Evals (test items + graders), their runs per model or checkpoint, each run's graded items, pairwise reviews."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import AutoString, Field, SQLModel

from app.tables.common import json_field, new_id, utcnow


class EvalRunStatus(enum.StrEnum):
    """OpenAI's eval run statuses."""

    queued = "queued"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended and will never change status again."""
        return self in (EvalRunStatus.completed, EvalRunStatus.failed, EvalRunStatus.canceled)


class EvalRunStatusColumn(TypeDecorator[EvalRunStatus]):
    """A run status stored as its plain string, read back as EvalRunStatus."""

    impl = AutoString
    cache_ok = True

    def process_bind_param(self, value: EvalRunStatus | str | None, dialect: Dialect) -> str | None:
        """The status's string; an unknown status is refused before it reaches the database."""
        return None if value is None else EvalRunStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> EvalRunStatus | None:
        """The stored string as EvalRunStatus."""
        return None if value is None else EvalRunStatus(value)


def _ts() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Eval(SQLModel, table=True):
    """An eval: how items look (data_source_config), the graders (testing_criteria), where items come from."""

    __tablename__ = "evals"

    id: str = Field(default_factory=lambda: new_id("eval", "_"), primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON, nullable=True))
    data_source_config: Any = json_field(dict, nullable=False)  # {"type": "custom", "item_schema": {...}, ...}
    testing_criteria: Any = json_field(list, nullable=False)  # grader configs in OpenAI's shapes, names unique
    dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    split: str | None = Field(default=None, max_length=20)  # validation | train | all (None: the whole dataset)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class EvalRun(SQLModel, table=True):
    """One model evaluated on an eval's items; a row of the worker's second queue (same discipline as jobs)."""

    __tablename__ = "eval_runs"

    id: str = Field(default_factory=lambda: new_id("evalrun", "_"), primary_key=True, max_length=64)
    eval_id: str = Field(sa_column=Column(String(64), ForeignKey("evals.id", ondelete="CASCADE"), nullable=False))
    name: str = Field(default="", max_length=200)
    model: str = Field(max_length=300)  # a model id of the catalogue (base, ft:…, checkpoint, OpenAI model)
    data_source: Any = json_field(dict, nullable=False)  # OpenAI's run data source, as stored
    status: EvalRunStatus = Field(
        default=EvalRunStatus.queued, sa_column=Column(EvalRunStatusColumn(40), nullable=False, index=True)
    )
    error: Any = json_field(None)  # {"code", "message"}
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON, nullable=True))
    purpose: str = Field(default="eval", max_length=20)  # eval | capture (the outputs become a dataset)
    output_dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    job_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True)
    )
    checkpoint_id: str | None = Field(default=None, max_length=64)
    n_items: int = 0
    n_done: int = 0
    result_counts: Any = json_field(dict)  # {"total", "errored", "failed", "passed"}
    per_testing_criteria_results: Any = json_field(list)  # [{"testing_criteria", "passed", "failed"}]
    per_model_usage: Any = json_field(list)
    cancel_requested: bool = False
    worker_id: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = _ts()
    attempts: int = 0
    created_at: datetime = _created()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    updated_at: datetime = _created()


class EvalRunItem(SQLModel, table=True):
    """One item of a run: the datasource item, the model's sample, each grader's result."""

    __tablename__ = "eval_run_items"
    __table_args__ = (UniqueConstraint("run_id", "item_index", name="uq_eval_run_items_run_index"),)

    id: str = Field(default_factory=lambda: new_id("outputitem", "_"), primary_key=True, max_length=64)
    run_id: str = Field(sa_column=Column(String(64), ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False))
    item_index: int = 0
    item: Any = json_field(dict, nullable=False)
    sample: Any = json_field(dict, nullable=False)  # {input, output, finish_reason, model, usage, error, ...}
    results: Any = json_field(list, nullable=False)  # [{name, type, score, passed, ...}]
    status: str = Field(default="fail", max_length=10)  # pass | fail | error
    created_at: datetime = _created()


class PairwiseReview(SQLModel, table=True):
    """A blind A/B comparison of two runs' answers to the same items, judged by a person or a judge model."""

    __tablename__ = "pairwise_reviews"

    id: str = Field(default_factory=lambda: new_id("review", "_"), primary_key=True, max_length=64)
    run_a_id: str = Field(sa_column=Column(String(64), ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False))
    run_b_id: str = Field(sa_column=Column(String(64), ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False))
    judge: str = Field(default="human", max_length=300)  # "human" or a model id
    status: str = Field(default="open", max_length=20)  # open | completed
    created_at: datetime = _created()


class PairwiseVote(SQLModel, table=True):
    """One item of a review: the order it was shown in and the choice made."""

    __tablename__ = "pairwise_votes"
    __table_args__ = (UniqueConstraint("review_id", "item_index", name="uq_pairwise_votes_review_index"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: str = Field(
        sa_column=Column(String(64), ForeignKey("pairwise_reviews.id", ondelete="CASCADE"), nullable=False)
    )
    item_index: int = 0
    a_first: bool = True  # whether run A's answer was shown on the left
    choice: str | None = Field(default=None, max_length=10)  # a | b | tie
    reason: str = Field(default="")
    created_at: datetime = _created()
