"""Eval runs: create (model resolved, items frozen, queued), read, list, cancel, delete; their output items,
summary (pass rates with 95% intervals) and progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from app.config import Settings
from app.errors import Conflict, Invalid, NotFound
from app.evals.evals import check_metadata, get_eval
from app.evals.graders import grader_needs_model
from app.evals.items import freeze_items, remove_folder, run_folder
from app.evals.sources import prepare_data_source
from app.evals.stats import wilson_interval
from app.jobs.model_catalog import resolve_model
from app.tables import EvalRun, EvalRunItem, EvalRunStatus, Job
from app.tables.common import utcnow

MAX_LIST = 100
PURPOSES = ("eval", "capture")
EMPTY_COUNTS = {"total": 0, "errored": 0, "failed": 0, "passed": 0}


def _check_list(order: str, limit: int) -> None:
    if order not in ("asc", "desc"):
        raise Invalid("order must be 'asc' or 'desc'.", param="order")
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}.", param="limit")


def create_run(
    session: Session,
    settings: Settings,
    eval_id: str,
    *,
    model: str,
    data_source: dict[str, Any] | None = None,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
    purpose: str = "eval",
    job_id: str | None = None,
    checkpoint_id: str | None = None,
) -> EvalRun:
    """Queue a run of `model` on an eval: the model must exist (NotFound), the items are frozen now.

    With no data_source the run reads the eval's dataset and split, each item's messages sent as they are.
    """
    row = get_eval(session, eval_id)
    if not isinstance(model, str) or not model.strip():
        raise Invalid("A run needs a model.", param="model")
    model = model.strip()
    resolve_model(session, settings, model)
    if purpose not in PURPOSES:
        raise Invalid("purpose is 'eval' or 'capture'.", param="purpose")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise Invalid("A run name is a string of at most 200 characters.", param="name")
    meta = check_metadata(metadata)
    if purpose == "eval":
        for index, config in enumerate(row.testing_criteria or []):
            judge = grader_needs_model(config)
            if judge is not None:
                try:
                    resolve_model(session, settings, judge)
                except NotFound as exc:
                    raise NotFound(exc.message, code=exc.code, param=f"testing_criteria[{index}].model") from None
    if job_id is not None and session.get(Job, job_id) is None:
        raise NotFound(f"No fine-tuning job with id {job_id!r}.", code="job_not_found", param="job_id")
    stored, items = prepare_data_source(session, settings, row, model, data_source)
    run = EvalRun(
        eval_id=row.id,
        name=(name or "").strip() or model,
        model=model,
        data_source=stored,
        metadata_=meta,
        purpose=purpose,
        job_id=job_id,
        checkpoint_id=checkpoint_id,
        n_items=len(items),
        result_counts=dict(EMPTY_COUNTS),
        per_testing_criteria_results=[
            {"testing_criteria": c.get("name", ""), "passed": 0, "failed": 0} for c in row.testing_criteria or []
        ],
        per_model_usage=[],
    )
    folder = run_folder(settings, row.id, run.id)
    try:
        freeze_items(settings, row.id, run.id, items)
        session.add(run)
        session.commit()
    except BaseException:
        session.rollback()
        remove_folder(folder)  # no run row: its items must not stay behind
        raise
    session.refresh(run)
    return run


def find_run(session: Session, run_id: str) -> EvalRun:
    """A run by its id alone, or NotFound (pages that know only the run)."""
    run = session.get(EvalRun, run_id) if isinstance(run_id, str) else None
    if run is None:
        raise NotFound(f"No eval run with id {run_id}.", code="run_not_found", param="run_id")
    return run


def get_run(session: Session, eval_id: str, run_id: str) -> EvalRun:
    """A run of this eval, or NotFound."""
    get_eval(session, eval_id)
    run = find_run(session, run_id)
    if run.eval_id != eval_id:
        raise NotFound(f"No eval run with id {run_id}.", code="run_not_found", param="run_id")
    return run


def _status_filter(status: str) -> EvalRunStatus:
    try:
        return EvalRunStatus(status)
    except ValueError:
        names = ", ".join(s.value for s in EvalRunStatus)
        raise Invalid(f"Unknown status {status!r}: use one of {names}.", param="status") from None


def list_runs(
    session: Session,
    eval_id: str,
    *,
    after: str | None = None,
    limit: int = 20,
    order: str = "asc",
    status: str | None = None,
) -> tuple[list[EvalRun], bool]:
    """An eval's runs by creation time, those after the run `after`, and whether more follow."""
    _check_list(order, limit)
    get_eval(session, eval_id)
    query = select(EvalRun).where(col(EvalRun.eval_id) == eval_id)
    if status:
        query = query.where(col(EvalRun.status) == _status_filter(status))
    created, ident = col(EvalRun.created_at), col(EvalRun.id)
    if after:
        anchor = session.get(EvalRun, after)
        if anchor is None or anchor.eval_id != eval_id:
            raise NotFound(f"No eval run with id {after}.", code="run_not_found", param="after")
        if order == "desc":
            query = query.where(or_(created < anchor.created_at, and_(created == anchor.created_at, ident < anchor.id)))
        else:
            query = query.where(or_(created > anchor.created_at, and_(created == anchor.created_at, ident > anchor.id)))
    ordering = (created.desc(), ident.desc()) if order == "desc" else (created.asc(), ident.asc())
    rows = list(session.exec(query.order_by(*ordering).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_runs_for_job(session: Session, job_id: str) -> list[EvalRun]:
    """The runs made for a job's checkpoints (and any other run tied to it), oldest first."""
    query = select(EvalRun).where(col(EvalRun.job_id) == job_id)
    return list(session.exec(query.order_by(col(EvalRun.created_at), col(EvalRun.id))))


def cancel_run(session: Session, eval_id: str, run_id: str) -> EvalRun:
    """Cancel a run: a queued one at once, one in progress is flagged and its worker stops at the next batch."""
    run = get_run(session, eval_id, run_id)
    if run.status.is_terminal:
        raise Conflict(f"The run has already {run.status.value}.", code="run_ended", param="run_id")
    now = utcnow()
    queued = session.exec(
        update(EvalRun)
        .where(col(EvalRun.id) == run_id, col(EvalRun.status) == EvalRunStatus.queued)
        .values(status=EvalRunStatus.canceled, finished_at=now, updated_at=now, cancel_requested=True)
    )
    if not queued.rowcount:  # claimed meanwhile (or already in progress): its worker ends it
        session.exec(
            update(EvalRun)
            .where(col(EvalRun.id) == run_id, col(EvalRun.status) == EvalRunStatus.in_progress)
            .values(cancel_requested=True, updated_at=now)
        )
    session.commit()
    session.refresh(run)
    return run


def delete_run(session: Session, settings: Settings, eval_id: str, run_id: str) -> None:
    """Delete a run, its items and its files (a run in progress stops: its worker finds it gone)."""
    run = get_run(session, eval_id, run_id)
    session.delete(run)
    session.commit()
    remove_folder(run_folder(settings, eval_id, run_id))


# -- what a run produced --------------------------------------------------------------------------------------
ITEM_STATUSES = ("pass", "fail", "error")


def list_output_items(
    session: Session,
    eval_id: str,
    run_id: str,
    *,
    status: str | None = None,
    after: str | None = None,
    limit: int = 20,
    order: str = "asc",
) -> tuple[list[EvalRunItem], bool]:
    """A run's output items in item order (or reversed), filtered by status, after the item `after`."""
    if order not in ("asc", "desc"):
        raise Invalid("order must be 'asc' or 'desc'.", param="order")
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}.", param="limit")
    if status is not None and status not in ITEM_STATUSES:
        raise Invalid("status is 'pass', 'fail' or 'error'.", param="status")
    get_run(session, eval_id, run_id)
    query = select(EvalRunItem).where(col(EvalRunItem.run_id) == run_id)
    if status:
        query = query.where(col(EvalRunItem.status) == status)
    index = col(EvalRunItem.item_index)
    if after:
        anchor = session.get(EvalRunItem, after)
        if anchor is None or anchor.run_id != run_id:
            raise NotFound(f"No output item with id {after}.", code="output_item_not_found", param="after")
        query = query.where(index < anchor.item_index if order == "desc" else index > anchor.item_index)
    query = query.order_by(index.desc() if order == "desc" else index.asc()).limit(limit + 1)
    rows = list(session.exec(query))
    return rows[:limit], len(rows) > limit


def get_output_item(session: Session, eval_id: str, run_id: str, output_item_id: str) -> EvalRunItem:
    """One output item of a run, or NotFound."""
    get_run(session, eval_id, run_id)
    row = session.get(EvalRunItem, output_item_id) if isinstance(output_item_id, str) else None
    if row is None or row.run_id != run_id:
        raise NotFound(
            f"No output item with id {output_item_id}.", code="output_item_not_found", param="output_item_id"
        )
    return row


def _rate(passed: int, failed: int) -> dict[str, Any]:
    graded = passed + failed
    low, high = wilson_interval(passed, graded)
    return {"pass_rate": passed / graded if graded else None, "interval": (low, high) if graded else None}


def run_summary(run: EvalRun) -> dict[str, Any]:
    """Pass rates of the run and of each grader with their Wilson 95% intervals; errored items counted apart.

    `{"passed", "failed", "errored", "total", "pass_rate", "interval", "graders": [{"name", "passed", "failed",
    "errored", "pass_rate", "interval"}]}` — rates are over graded items (errors left out), None before any.
    """
    counts = run.result_counts or {}
    passed, failed = int(counts.get("passed", 0)), int(counts.get("failed", 0))
    errored = int(counts.get("errored", 0))
    graders = []
    for entry in run.per_testing_criteria_results or []:
        g_passed, g_failed = int(entry.get("passed", 0)), int(entry.get("failed", 0))
        graders.append(
            {
                "name": entry.get("testing_criteria", ""),
                "passed": g_passed,
                "failed": g_failed,
                "errored": max(0, run.n_done - g_passed - g_failed),
                **_rate(g_passed, g_failed),
            }
        )
    return {
        "passed": passed,
        "failed": failed,
        "errored": errored,
        "total": int(counts.get("total", 0)),
        **_rate(passed, failed),
        "graders": graders,
    }


def run_progress(session: Session, run_id: str) -> dict[str, Any]:
    """What a live page shows of a run: status, items done of all, counts (one row read)."""
    run = find_run(session, run_id)
    return {
        "id": run.id,
        "status": run.status.value,
        "n_done": run.n_done,
        "n_items": run.n_items,
        "result_counts": dict(run.result_counts or {}),
        "cancel_requested": run.cancel_requested,
        "error": run.error,
        "output_dataset_id": run.output_dataset_id,
    }
