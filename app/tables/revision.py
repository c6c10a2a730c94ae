"""A dataset's revision history: one row per bulk fix, with the before-state that undoes it (migration 0010)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from app.tables.common import json_field, utcnow


class DatasetRevision(SQLModel, table=True):
    """One undoable step on a dataset's examples: what was done, when, to how many, and each example's before."""

    __tablename__ = "dataset_revisions"
    __table_args__ = (Index("ix_dataset_revisions_dataset_id", "dataset_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False))
    # The fix's name (app.datasets.fixes.FIXES) and the sentence that said what it did.
    fix: str = Field(max_length=40)
    summary: str = Field(default="", max_length=500)
    n_changed: int = Field(default=0)
    n_deleted: int = Field(default=0)
    # One entry per example touched: {"id", "deleted": bool, "after_version": int | None, "row": {column: value}},
    # the row as it was before the step (app.datasets.fixes.revisions.SNAPSHOT_COLUMNS).
    before: Any = json_field(list, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Set when the step was undone; an undone step cannot be undone again.
    undone_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
