"""Capture: a completed run's answers become a new dataset (each prompt with the model's answer as the assistant
turn), its description saying where they came from. How a golden set is kept, and how a big model is distilled."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets import validation
from app.datasets.datasets import new_dataset, touch_dataset
from app.datasets.examples import record_parts
from app.datasets.limits import Limits
from app.errors import Invalid
from app.tables import Dataset, Eval, EvalRun, EvalRunItem, Example
from app.tables.common import stored_id

NAME_CHARS = 200


def _source_words(session: Session, run: EvalRun, row: Eval | None) -> str:
    """Where the prompts came from, in words: `dataset <name>`, `file <id>`, or `eval <name>`."""
    source = (run.data_source or {}).get("source") or {}
    if source.get("type") == "dataset":
        dataset = session.get(Dataset, source.get("dataset_id"))
        split = source.get("split") or "all"
        where = f"dataset {dataset.name}" if dataset is not None else f"dataset #{source.get('dataset_id')}"
        return where if split == "all" else f"{where} ({split} split)"
    if source.get("type") == "file_id":
        return f"file {source.get('id')}"
    return f"eval {row.name}" if row is not None else "an eval"


def _record(item_row: EvalRunItem) -> dict[str, Any]:
    """The prompt as sent, the answer appended as the assistant turn, the item's tools kept."""
    sample = item_row.sample or {}
    answer = (sample.get("output") or [{}])[0].get("content", "")
    record: dict[str, Any] = {"messages": [*sample.get("input", []), {"role": "assistant", "content": answer}]}
    tools = (item_row.item or {}).get("tools")
    if tools is not None:
        record["tools"] = tools
    return record


def capture_dataset(session: Session, settings: Settings, run_id: str) -> int:
    """Write the run's answered items as a new dataset (validated like any example; errored items left out)."""
    run = session.get_one(EvalRun, run_id)
    row = session.get(Eval, run.eval_id)
    rows = list(
        session.exec(
            select(EvalRunItem)
            .where(col(EvalRunItem.run_id) == run_id, col(EvalRunItem.status) != "error")
            .order_by(col(EvalRunItem.item_index))
        )
    )
    source = _source_words(session, run, row)
    day = (run.started_at or run.created_at).date().isoformat()
    name = f"{run.model} answers to {source}"[:NAME_CHARS]
    description = f"Answers of {run.model} to {len(rows)} prompts of {source} (run {run.id}), captured {day}."
    dataset = new_dataset(session, name, description)
    dataset_id = stored_id(dataset)
    rev = touch_dataset(session, dataset_id)
    limits = Limits.of(settings)
    skipped = 0
    for position, item_row in enumerate(rows):
        try:
            parts = record_parts(_record(item_row), limits)
        except Invalid:
            skipped += 1  # over the size limits: an example no job could train on
            continue
        example = Example(dataset_id=dataset_id, position=position, rev=rev, **parts)
        validation.apply_check(example)
        session.add(example)
    if skipped:
        dataset.description = f"{description} {skipped} answers over the size limits were left out."
        session.add(dataset)
    session.commit()
    return dataset_id
