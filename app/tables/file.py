"""Files uploaded through the OpenAI-compatible /v1/files API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from app.tables.common import new_id, utcnow


class UploadedFile(SQLModel, table=True):
    __tablename__ = "files"

    id: str = Field(default_factory=lambda: new_id("file"), primary_key=True, max_length=64)
    filename: str = Field(max_length=500)
    purpose: str = Field(default="fine-tune", max_length=40)
    bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    path: str  # raw bytes as uploaded, relative to data_dir
    status: str = Field(default="processed", max_length=20)
    status_details: str | None = None
    dataset_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
