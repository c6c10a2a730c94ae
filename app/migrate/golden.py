"""Golden sets: a model's answers to a dataset's prompts, captured by an eval run with purpose "capture".

Any model Tuneboard can chat with can be captured (an OpenAI fine-tuned model before it retires, a large local
model to distil into a small one). The run goes through the worker's eval lane; when it completes, app.evals
writes its answers as a new dataset whose description says which model answered which prompts, and when.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import get_dataset
from app.evals.evals import create_eval
from app.evals.runs import create_run
from app.migrate.import_files import make_model_known
from app.tables import EvalRun

CAPTURE = "capture"


def sampling(max_tokens: int | None) -> dict[str, Any] | None:
    """A run data source over the eval's own items, answers capped at max_tokens (None: the default source)."""
    if max_tokens is None:
        return None
    return {"type": "completions", "sampling_params": {"max_completion_tokens": max_tokens}}


def start_capture(
    session: Session,
    settings: Settings,
    model_id: str,
    dataset_id: int,
    *,
    split: str = "all",
    max_tokens: int | None = None,
    **provider_options: Any,
) -> EvalRun:
    """Queue a capture run: `model_id` answers every prompt of the dataset (or of a split of it), greedily; when it
    completes its answers become a golden set. A fine-tuned OpenAI model made elsewhere is made known first (its
    job is imported), so that it can be chatted with."""
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
        data_source=sampling(max_tokens),
        name=f"capture {model_id}"[:200],
        purpose=CAPTURE,
        metadata={"source_dataset_id": str(dataset_id)},
    )


def recent_captures(session: Session, limit: int = 20) -> list[EvalRun]:
    """The latest capture runs, newest first."""
    query = select(EvalRun).where(col(EvalRun.purpose) == CAPTURE).order_by(col(EvalRun.created_at).desc())
    return list(session.exec(query.limit(limit)))


def golden_dataset_ids(session: Session) -> set[int]:
    """The datasets that capture runs made (golden sets)."""
    query = select(EvalRun.output_dataset_id).where(
        col(EvalRun.purpose) == CAPTURE, col(EvalRun.output_dataset_id).is_not(None)
    )
    return {int(i) for i in session.exec(query) if i is not None}
