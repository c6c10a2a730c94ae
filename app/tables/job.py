"""Fine-tuning jobs, their events, checkpoints, snapshots and the tuned models they produce."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import AutoString, Field, SQLModel

from app.tables.common import json_field, new_id, utcnow


class JobStatus(enum.StrEnum):
    validating_files = "validating_files"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended and will never change status again."""
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class JobStatusColumn(TypeDecorator[JobStatus]):
    """A job status stored as its plain string (the column stays VARCHAR(40)), read back as JobStatus."""

    impl = AutoString
    cache_ok = True

    def process_bind_param(self, value: JobStatus | str | None, dialect: Dialect) -> str | None:
        """The status's string; an unknown status is refused before it reaches the database."""
        return None if value is None else JobStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> JobStatus | None:
        """The stored string as JobStatus."""
        return None if value is None else JobStatus(value)


def _ts() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Snapshot(SQLModel, table=True):
    """The exact JSONL a job trained on, written once at launch and never changed."""

    __tablename__ = "snapshots"

    id: str = Field(default_factory=lambda: new_id("snap"), primary_key=True, max_length=64)
    dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    kind: str = Field(default="train", max_length=20)  # train | validation
    path: str  # relative to data_dir
    sha256: str = Field(max_length=64)
    n_examples: int = 0
    bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Job(SQLModel, table=True):
    """A fine-tuning job shaped like OpenAI's, plus Tuneboard's provider and snapshot bookkeeping."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: str = Field(default_factory=lambda: new_id("ftjob"), primary_key=True, max_length=64)
    provider: str = Field(default="local", max_length=40)
    provider_job_id: str | None = Field(default=None, max_length=200)
    status: JobStatus = Field(
        default=JobStatus.queued, sa_column=Column(JobStatusColumn(40), nullable=False, default=JobStatus.queued)
    )
    model: str = Field(max_length=200)
    fine_tuned_model: str | None = Field(default=None, max_length=300)
    method: Any = json_field(None)  # {"type": "supervised", "supervised": {"hyperparameters": {...}}}
    hyperparameters: Any = json_field(dict)  # as requested ("auto" allowed), replaced by resolved values
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = None
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON, nullable=True))
    trained_tokens: int | None = None
    error: Any = json_field(None)  # {"code", "message", "param"}
    dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    validation_dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    training_snapshot_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("snapshots.id"), nullable=True)
    )
    validation_snapshot_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("snapshots.id"), nullable=True)
    )
    training_file: str | None = Field(default=None, max_length=64)  # /v1 file id when launched through /v1
    validation_file: str | None = Field(default=None, max_length=64)
    result_files: Any = json_field(list)
    estimate: Any = json_field(None)  # the report's estimate at launch, for "estimate vs actual"
    # An eval attached at launch: each checkpoint is evaluated on it (app.evals). No FK object: evals sit above jobs.
    eval_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("evals.id", ondelete="SET NULL"), nullable=True)
    )
    cancel_requested: bool = False
    worker_id: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = _ts()
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    estimated_finish: datetime | None = _ts()
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class JobEvent(SQLModel, table=True):
    """One OpenAI-shaped job event (message or metrics). `seq` orders them and resumes live streams."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_seq", "job_id", "seq"),)

    seq: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    id: str = Field(default_factory=lambda: new_id("ftevent"), max_length=64, unique=True)
    job_id: str = Field(sa_column=Column(String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    level: str = Field(default="info", max_length=10)
    type: str = Field(default="message", max_length=20)  # message | metrics
    message: str = ""
    data: Any = json_field(None)


class Checkpoint(SQLModel, table=True):
    """A saved adapter at a step of a job, usable for chat like a model."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_job_step", "job_id", "step_number"),)

    id: str = Field(default_factory=lambda: new_id("ftckpt"), primary_key=True, max_length=64)
    job_id: str = Field(sa_column=Column(String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False))
    step_number: int = 0
    fine_tuned_model_checkpoint: str = Field(max_length=300)
    metrics: Any = json_field(dict)
    path: str | None = None  # adapter directory relative to data_dir (local engine)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class TunedModel(SQLModel, table=True):
    """A fine-tuned model a job produced (local adapter or a provider's model id)."""

    __tablename__ = "tuned_models"

    id: str = Field(primary_key=True, max_length=300)  # ft:<base>:<suffix>:<job id>
    job_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    )
    provider: str = Field(default="local", max_length=40)
    base_model: str = Field(max_length=200)
    path: str | None = None  # adapter directory relative to data_dir (local engine)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    deleted_at: datetime | None = _ts()
