"""Datasets and their examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Table
from sqlmodel import Field, SQLModel

from app.tables.common import json_field, utcnow

SPLITS = ("train", "validation")
# What a dataset's examples are (migration 0009): OpenAI's chat fine-tuning shape, or its DPO preference shape.
SUPERVISED, PREFERENCE = "supervised", "preference"
DATASET_KINDS = (SUPERVISED, PREFERENCE)
# A preference example's `extra` key for its input's keys besides `messages` and `tools` (OpenAI's DPO input also
# takes e.g. `parallel_tool_calls`; an explicit `"tools": null` too): to_record() puts them back in the input.
INPUT_EXTRA = "_input"


class Dataset(SQLModel, table=True):
    """A named set of examples; its counts come from the examples (app/datasets/datasets.py)."""

    __tablename__ = "datasets"

    # name and description first: the column order the table has had since migration 0001.
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=5000)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Bumped by every change to the dataset's examples (app.datasets.datasets.touch_dataset); see migration 0004.
    rev: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # SUPERVISED or PREFERENCE (migration 0009); every example of a dataset has its dataset's kind.
    kind: str = Field(default=SUPERVISED, max_length=20, sa_column_kwargs={"server_default": SUPERVISED})

    @property
    def is_preference(self) -> bool:
        return self.kind == PREFERENCE


class Example(SQLModel, table=True):
    """One training conversation. `messages`, `tools` and `extra` keep the imported JSON verbatim."""

    __tablename__ = "examples"
    __table_args__ = (
        Index("ix_examples_dataset_position", "dataset_id", "position"),
        Index("ix_examples_dataset_split_valid", "dataset_id", "split", "valid"),
        Index("ix_examples_dataset_split_position", "dataset_id", "split", "position"),
        Index("ix_examples_dataset_valid_position", "dataset_id", "valid", "position"),
        Index("ix_examples_dataset_rev", "dataset_id", "rev"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False))
    position: int = Field(default=0)
    messages: Any = json_field(list, nullable=False)
    tools: Any = json_field(None)
    # Every other top-level key of the imported line (parallel_tool_calls, metadata…), kept so export round-trips.
    extra: Any = json_field(None)
    split: str | None = Field(default=None, max_length=20)
    note: str = Field(default="")
    version: int = Field(default=1)
    # Validation cache: recomputed whenever the example changes (see app/datasets/validation).
    valid: bool = Field(default=True)
    n_errors: int = Field(default=0)
    n_warnings: int = Field(default=0)
    problems: Any = json_field(list)
    n_messages: int = Field(default=0)
    token_counts: Any = json_field(None)  # {"o200k_base": {"total":…, "assistant":…, "trained":…}, …}
    content_hash: str = Field(default="", max_length=64)
    search_text: str = Field(default="")  # lower-cased message text, for search
    # The dataset's rev when this row was last written; NULL from writers that do not stamp (always re-read).
    rev: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Where an imported example came from (migration 0008): the file's name and its line (for CSV, the first
    # line of its row). NULL for examples written in the editor or imported before 0008.
    source_file: str | None = Field(default=None, max_length=255)
    source_line: int | None = Field(default=None)
    # A preference example's two answers (migration 0009): lists of assistant messages, as OpenAI's DPO shape has
    # them; its input conversation is `messages` (and `tools`). NULL on supervised examples.
    preferred_output: Any = json_field(None)
    non_preferred_output: Any = json_field(None)
    # The MinHash signature of the example's comparable text, tagged with its content hash (migration 0011,
    # app.datasets.quality.stored_signatures): a cache, NULL until signed; a tag that does not match is stale.
    near_signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))

    @property
    def source(self) -> str | None:
        """Where the example was imported from, in words: "line 4 of data.jsonl" (None: not imported)."""
        if self.source_line is None:
            return None
        return f"line {self.source_line:,} of {self.source_file}" if self.source_file else f"line {self.source_line:,}"

    @property
    def is_preference(self) -> bool:
        return self.preferred_output is not None or self.non_preferred_output is not None

    def to_record(self) -> dict[str, Any]:
        """The example as one OpenAI fine-tuning JSONL object (chat, or DPO for a preference example), keys in a
        stable order."""
        if self.is_preference:
            given: dict[str, Any] = {"messages": self.messages}
            if self.tools is not None:
                given["tools"] = self.tools
            extra = dict(self.extra or {})
            held = extra.pop(INPUT_EXTRA, None)
            if isinstance(held, dict):  # the input's other keys, after its messages and tools as OpenAI lists them
                given.update({k: v for k, v in held.items() if k not in given})
            elif held is not None:
                extra[INPUT_EXTRA] = held  # not an input's keys: an ordinary top-level field
            preference: dict[str, Any] = {
                "input": given,
                "preferred_output": self.preferred_output,
                "non_preferred_output": self.non_preferred_output,
            }
            preference.update(extra)
            return preference
        record: dict[str, Any] = {"messages": self.messages}
        if self.tools is not None:
            record["tools"] = self.tools
        if self.extra:
            record.update(self.extra)
        return record


# The Core tables, typed (SQLModel does not declare `__table__`): for the bulk statements that bypass the ORM.
DATASETS: Table = SQLModel.metadata.tables["datasets"]
EXAMPLES: Table = SQLModel.metadata.tables["examples"]
