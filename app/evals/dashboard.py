"""What the eval pages show: the list with each eval's latest pass rate, an eval with its runs, a run with its items.

- evals_overview(session, settings) -> dict          (/evals)
- eval_page(session, settings, eval_id) -> dict      (/evals/{id})
- run_page(session, eval_id, run_id, status, offset) -> dict   (/evals/{id}/runs/{run_id})
- model_groups(session, settings): the catalogue's models by kind, for the "Run on a model" and judge pickers
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from app.config import Settings
from app.errors import Invalid
from app.evals.compare import Rate, grader_rates, output_text, prompt_messages
from app.evals.eval_form import stored_items
from app.evals.evals import get_eval, list_evals
from app.evals.items import items_from_dataset
from app.evals.reviews import reviews_of_eval
from app.evals.runs import get_run, list_runs
from app.jobs.model_catalog import KIND_LABELS, ModelInfo, list_models
from app.tables import Dataset, Eval, EvalRun, EvalRunItem, EvalRunStatus, Example
from app.tables.common import fits_db_int

PREVIEW_ITEMS = 5
ITEMS_PER_PAGE = 25
MAX_RUNS_SHOWN = 100
ITEM_FILTERS = ("", "pass", "fail", "error")


@dataclass(frozen=True)
class RunRow:
    """A run as the tables of runs show it."""

    run: EvalRun
    rates: list[Rate]  # overall first, then one per grader

    @property
    def overall(self) -> Rate:
        """Item-level outcome (every grader passed)."""
        return self.rates[0]

    def rate_of(self, grader: str) -> Rate | None:
        """The rate of the grader with this name, None when the run has none (made before the grader was added)."""
        return next((r for r in self.rates[1:] if r.name == grader), None)

    @property
    def active(self) -> bool:
        """Whether the run may still change."""
        return not self.run.status.is_terminal


@dataclass(frozen=True)
class EvalRow:
    """An eval in the list: where its items come from, its graders, its runs and the latest finished one."""

    eval: Eval
    source: str
    n_items: int | None
    n_runs: int
    latest: RunRow | None


def source_label(row: Eval, dataset: Dataset | None) -> str:
    """Where the items come from, in words: "arithmetic · validation split" or "uploaded items"."""
    if row.dataset_id is None:
        return "uploaded items"
    name = dataset.name if dataset is not None else f"dataset #{row.dataset_id} (deleted)"
    split = row.split or "all"
    return f"{name} · {'all examples' if split == 'all' else split + ' split'}"


def model_groups(session: Session, settings: Settings) -> list[tuple[str, list[ModelInfo]]]:
    """Every model Tuneboard can chat with, grouped by kind (base, tuned, checkpoints, OpenAI)."""
    groups: dict[str, list[ModelInfo]] = {kind: [] for kind in KIND_LABELS}
    for model in list_models(session, settings):
        groups.setdefault(model.kind, []).append(model)
    return [(KIND_LABELS.get(kind, kind), models) for kind, models in groups.items() if models]


def count_items(session: Session, settings: Settings, row: Eval) -> int | None:
    """How many examples the eval's split holds now (examples without a prompt included), or uploaded items."""
    if row.dataset_id is None:
        items = stored_items(settings, row.id)
        return None if items is None else len(items)
    query = select(func.count()).select_from(Example).where(col(Example.dataset_id) == row.dataset_id)
    if row.split == "validation":
        query = query.where(col(Example.split) == "validation")
    elif row.split == "train":
        query = query.where(or_(col(Example.split) == "train", col(Example.split).is_(None)))
    return int(session.exec(query).one())


def evals_overview(session: Session, settings: Settings) -> dict[str, Any]:
    """The newest evals with their source, grader count, run count and latest finished run's pass rate."""
    evals, has_more = list_evals(session, limit=100)
    ids = [e.id for e in evals]
    counts = dict(
        session.exec(
            select(EvalRun.eval_id, func.count()).where(col(EvalRun.eval_id).in_(ids)).group_by(EvalRun.eval_id)
        ).all()
    )
    latest: dict[str, EvalRun] = {}
    finished = select(EvalRun).where(col(EvalRun.eval_id).in_(ids), col(EvalRun.status) == EvalRunStatus.completed)
    for run in session.exec(finished.order_by(col(EvalRun.created_at).desc())):
        latest.setdefault(run.eval_id, run)
    datasets = {d.id: d for d in session.exec(select(Dataset).where(col(Dataset.id).in_(_dataset_ids(evals))))}
    rows = [
        EvalRow(
            eval=e,
            source=source_label(e, datasets.get(e.dataset_id) if e.dataset_id else None),
            n_items=count_items(session, settings, e),
            n_runs=int(counts.get(e.id, 0)),
            latest=RunRow(latest[e.id], grader_rates(latest[e.id])) if e.id in latest else None,
        )
        for e in evals
    ]
    return {"rows": rows, "has_more": has_more}


def _dataset_ids(evals: list[Eval]) -> list[int]:
    return [e.dataset_id for e in evals if e.dataset_id is not None]


def preview_items(session: Session, settings: Settings, row: Eval) -> tuple[list[dict[str, Any]], int]:
    """The first few items of an eval and how many there are (a dataset's split as it is now, or the upload)."""
    if row.dataset_id is not None:
        if session.get(Dataset, row.dataset_id) is None:
            return [], 0
        items = items_from_dataset(session, row.dataset_id, row.split)
    else:
        items = stored_items(settings, row.id) or []
    return items[:PREVIEW_ITEMS], len(items)


def item_fields(item: dict[str, Any]) -> list[tuple[str, str]]:
    """An item's fields other than its messages, as short text, for the previews."""
    out = []
    for key, value in item.items():
        if key == "messages":
            continue
        text = value if isinstance(value, str) else repr(value)
        out.append((str(key), text if len(text) <= 300 else text[:300] + "…"))
    return out


def eval_page(session: Session, settings: Settings, eval_id: str) -> dict[str, Any]:
    """An eval: its items (a preview), graders, runs with their rates, reviews, and what a new run can pick."""
    row = get_eval(session, eval_id)
    dataset = session.get(Dataset, row.dataset_id) if row.dataset_id is not None else None
    runs, has_more = list_runs(session, row.id, limit=MAX_RUNS_SHOWN, order="desc")
    preview, n_items = preview_items(session, settings, row)
    names = {run.id: run.name or run.model for run in runs}
    return {
        "eval": row,
        "dataset": dataset,
        "source": source_label(row, dataset),
        "preview": [(prompt_messages(item, None), item_fields(item)) for item in preview],
        "n_items": n_items,
        "graders": row.testing_criteria or [],
        "runs": [RunRow(run, grader_rates(run)) for run in runs],
        "more_runs": has_more,
        "active": any(not run.status.is_terminal for run in runs),
        "reviews": reviews_of_eval(session, row.id),
        "run_names": names,
        "model_groups": model_groups(session, settings),
        "needs_template": row.dataset_id is None and not any("messages" in item for item in preview),
    }


@dataclass(frozen=True)
class ItemRow:
    """One output item as the run page lists it."""

    row: EvalRunItem
    prompt: list[dict[str, str]]
    output: str
    error: str | None


def _item_row(row: EvalRunItem) -> ItemRow:
    sample = row.sample or {}
    error = sample.get("error")
    message = error.get("message") if isinstance(error, dict) else (str(error) if error else None)
    return ItemRow(row, prompt_messages(row.item, sample), output_text(sample), message)


def run_facts(run: EvalRun) -> dict[str, Any]:
    """How the run asked (prompt, sampling), what it used (tokens per model) and how long it took, in words."""
    source = run.data_source or {}
    spec = source.get("input_messages") or {}
    if spec.get("type") == "template":
        template = spec.get("template") or []
        prompt = " / ".join(str(m.get("content", "")) for m in template if isinstance(m, dict))
    else:
        prompt = f"{spec.get('item_reference', 'item.messages')}, as they are"
    sampling = source.get("sampling_params") or {}
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sampling.items() if v is not None)
    took = None
    if run.started_at is not None and run.finished_at is not None:
        seconds = max(0, int((run.finished_at - run.started_at).total_seconds()))
        took = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
    return {"prompt": prompt, "sampling": shown or "defaults", "usage": run.per_model_usage or [], "took": took}


def run_page(session: Session, eval_id: str, run_id: str, status: str = "", offset: int = 0) -> dict[str, Any]:
    """A run: progress, rates per grader, and a page of its items (all, or those that passed, failed or errored)."""
    if status not in ITEM_FILTERS:
        raise Invalid("Show pass, fail or error items (or all).", param="status")
    if offset < 0 or not fits_db_int(offset):
        raise Invalid("offset must be a whole number of at least 0.", param="offset")
    run = get_run(session, eval_id, run_id)
    row = get_eval(session, eval_id)
    query = select(EvalRunItem).where(col(EvalRunItem.run_id) == run.id)
    if status:
        query = query.where(col(EvalRunItem.status) == status)
    page = session.exec(query.order_by(col(EvalRunItem.item_index)).offset(offset).limit(ITEMS_PER_PAGE + 1)).all()
    counts = run.result_counts or {}
    dataset = session.get(Dataset, run.output_dataset_id) if run.output_dataset_id is not None else None
    return {
        "eval": row,
        "run": run,
        "rates": grader_rates(run),
        "facts": run_facts(run),
        "items": [_item_row(r) for r in page[:ITEMS_PER_PAGE]],
        "has_next": len(page) > ITEMS_PER_PAGE,
        "offset": offset,
        "per_page": ITEMS_PER_PAGE,
        "status": status,
        "counts": {"pass": counts.get("passed", 0), "fail": counts.get("failed", 0), "error": counts.get("errored", 0)},
        "active": not run.status.is_terminal,
        "percent": int(100 * run.n_done / run.n_items) if run.n_items else 0,
        "output_dataset": dataset,
    }
