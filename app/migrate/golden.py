"""Golden sets: a model's answers to a dataset's prompts, saved as a new dataset that says where it came from.

Any model Tuneboard can chat with can be captured (an OpenAI fine-tuned model before it retires, a large local
model to distil into a small one). Each example of the new dataset is the prompt (the conversation up to its last
assistant turn) followed by the captured answer as the assistant's turn.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.datasets.datasets import create_dataset, get_dataset
from app.datasets.importer import import_file
from app.tables import Dataset
from app.tables.common import utcnow


@dataclass(frozen=True)
class CapturedAnswer:
    """One prompt and the model's answer to it; `error` set (and no answer kept) when the model failed on it."""

    messages: list[dict[str, Any]]
    answer: str
    tools: Any = None
    error: str | None = None


def golden_description(model_id: str, source: Dataset, day: str, run_id: str | None = None, failed: int = 0) -> str:
    """The provenance a golden set carries in its description."""
    run = f" (capture run {run_id})" if run_id else ""
    left_out = (
        f" {failed} prompt{'' if failed == 1 else 's'} failed and {'was' if failed == 1 else 'were'} left out."
        if failed
        else ""
    )
    return (
        f"Golden set: answers of {model_id} to the prompts of dataset {source.name} (#{source.id}), "
        f"captured{run} on {day}.{left_out}"
    )


def _record(answer: CapturedAnswer) -> bytes:
    record: dict[str, Any] = {"messages": [*answer.messages, {"role": "assistant", "content": answer.answer}]}
    if answer.tools is not None:
        record["tools"] = answer.tools
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def save_captured_answers(
    session: Session,
    source_dataset_id: int,
    model_id: str,
    outputs: Iterable[CapturedAnswer],
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
) -> Dataset:
    """Save a model's answers to a dataset's prompts as a new dataset, through the importer (validated as usual)."""
    source = get_dataset(session, source_dataset_id)
    kept, failed = [], 0
    for answer in outputs:
        if answer.error is not None:
            failed += 1
        else:
            kept.append(_record(answer))
    name = f"Golden set: {model_id} on {source.name}"[:200]
    description = golden_description(model_id, source, utcnow().date().isoformat(), run_id, failed)
    dataset = create_dataset(session, name, description)
    stream = io.BytesIO(b"".join(kept))
    import_file(session, int(dataset.id or 0), stream, filename="golden.jsonl", kind="jsonl", settings=settings)
    session.refresh(dataset)
    return dataset
