"""Golden sets: a model's answers to a dataset's prompts, saved as a new dataset that says where it came from.

Any model Tuneboard can chat with can be captured (an OpenAI fine-tuned model before it retires, a large local
model to distil into a small one). Each example of the new dataset is the prompt (the conversation up to its last
assistant turn) followed by the captured answer as the assistant's turn.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import create_dataset, get_dataset
from app.datasets.importer import import_file
from app.evals.evals import create_eval
from app.evals.runs import create_run
from app.migrate.import_files import make_model_known
from app.tables import Dataset, EvalRun
from app.tables.common import utcnow

CAPTURE = "capture"


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


def start_capture(
    session: Session, settings: Settings, model_id: str, dataset_id: int, *, split: str = "all", **provider_options: Any
) -> EvalRun:
    """Queue a capture run: `model_id` answers every prompt of the dataset (a split of it), in the worker's eval
    lane; when it completes, its answers become a golden set. A fine-tuned OpenAI model made elsewhere is made
    known first (its job is imported)."""
    model_id = (model_id or "").strip()
    if model_id.startswith("ft:"):
        make_model_known(session, settings, model_id, **provider_options)
    source = get_dataset(session, dataset_id)
    # Eval names are unique: a short random tag tells apart captures of the same model and data.
    name = f"Capture: {model_id} on {source.name}"[:190] + f" · {secrets.token_hex(3)}"
    evaluation = create_eval(
        session,
        settings,
        name=name,
        testing_criteria=[],
        dataset_id=dataset_id,
        split=split,
        metadata={"tuneboard": CAPTURE},
    )
    return create_run(
        session,
        settings,
        evaluation.id,
        model=model_id,
        name=f"capture {model_id}"[:200],
        purpose=CAPTURE,
        metadata={"source_dataset_id": str(dataset_id)},
    )


def recent_captures(session: Session, limit: int = 20) -> list[EvalRun]:
    """The latest capture runs, newest first."""
    query = select(EvalRun).where(col(EvalRun.purpose) == CAPTURE).order_by(col(EvalRun.created_at).desc())
    return list(session.exec(query.limit(limit)))
