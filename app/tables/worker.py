"""Worker processes that are alive now: what they serve and whether their host trains on a GPU."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from app.tables.common import json_field, utcnow


class WorkerRow(SQLModel, table=True):
    """One running `tuneboard worker` (or embedded worker); `seen_at` is refreshed every heartbeat_seconds."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True, max_length=200)  # host:pid:random, as in jobs.worker_id
    host: str = Field(default="", max_length=200)
    providers: Any = json_field(list, nullable=False)
    gpu: bool = Field(default=False)
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
