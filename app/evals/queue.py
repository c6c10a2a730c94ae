"""The eval_runs table as the worker's second queue: atomic claim, heartbeats, takeover of stale runs, ending a run.

The same discipline as app/jobs/queue.py: every function is one short transaction, and a worker owns a run while
`worker_id` is its id and the run is in progress; every write it makes is conditional on that, so a worker that
lost its run (taken over after a missed heartbeat, or the run deleted) never overwrites anyone's work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from app.tables import EvalRun, EvalRunStatus
from app.tables.common import utcnow
from app.tables.db import is_sqlite, session_scope

MAX_ATTEMPTS = 3
_IN_PROGRESS = col(EvalRun.status) == EvalRunStatus.in_progress


def owned(run_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a run that this worker still owns and runs (for the executor's own writes)."""
    return col(EvalRun.id) == run_id, col(EvalRun.worker_id) == worker_id, _IN_PROGRESS


def claim_next_run(engine: Engine, worker_id: str) -> str | None:
    """Atomically take the oldest queued run; its id, or None when there is none."""
    now = utcnow()
    values = {
        "status": EvalRunStatus.in_progress,
        "worker_id": worker_id,
        "heartbeat_at": now,
        "updated_at": now,
        "attempts": col(EvalRun.attempts) + 1,
    }
    queued = col(EvalRun.status) == EvalRunStatus.queued
    run_id: str | None
    with session_scope(engine) as session:
        pick = select(col(EvalRun.id)).where(queued).order_by(col(EvalRun.created_at), col(EvalRun.id)).limit(1)
        if is_sqlite(engine):
            # SQLite serialises writers: the sub-select and the update happen under one write lock, and the
            # status condition makes a lost race update nothing.
            stmt = update(EvalRun).where(col(EvalRun.id) == pick.scalar_subquery(), queued)
            run_id = session.exec(stmt.values(**values).returning(col(EvalRun.id))).scalar_one_or_none()
        else:
            run_id = session.exec(pick.with_for_update(skip_locked=True)).one_or_none()
            if run_id is not None:
                session.exec(update(EvalRun).where(col(EvalRun.id) == run_id).values(**values))
        if run_id is not None:
            session.exec(
                update(EvalRun)
                .where(col(EvalRun.id) == run_id, col(EvalRun.started_at).is_(None))
                .values(started_at=now)
            )
    return run_id


def take_over_stale_run(engine: Engine, worker_id: str, timeout_seconds: float) -> str | None:
    """Take one run in progress whose worker stopped heartbeating; its id, or None."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    with session_scope(engine) as session:
        silent = (col(EvalRun.heartbeat_at) < cutoff) | col(EvalRun.heartbeat_at).is_(None)
        stale = (
            select(col(EvalRun.id), col(EvalRun.worker_id))
            .where(_IN_PROGRESS, silent)
            .order_by(col(EvalRun.created_at))
            .limit(1)
        )
        if not is_sqlite(engine):
            stale = stale.with_for_update(skip_locked=True)
        row = session.exec(stale).first()
        if row is None:
            return None
        run_id, old_worker = row
        now = utcnow()
        # Same cutoff condition again: if the old worker heartbeated meanwhile, nothing changes.
        result = session.exec(
            update(EvalRun)
            .where(
                col(EvalRun.id) == run_id,
                _IN_PROGRESS,
                col(EvalRun.worker_id).is_not_distinct_from(old_worker),
                silent,
            )
            .values(worker_id=worker_id, heartbeat_at=now, updated_at=now, attempts=col(EvalRun.attempts) + 1)
        )
        return run_id if result.rowcount else None


def heartbeat_run(engine: Engine, run_id: str, worker_id: str) -> tuple[bool, bool]:
    """Mark the run alive. Returns (still ours, cancel requested)."""
    with session_scope(engine) as session:
        result = session.exec(update(EvalRun).where(*owned(run_id, worker_id)).values(heartbeat_at=utcnow()))
        cancel = session.exec(select(col(EvalRun.cancel_requested)).where(col(EvalRun.id) == run_id)).first()
    return bool(result.rowcount), bool(cancel)


def cancel_requested(engine: Engine, run_id: str) -> bool:
    """Whether someone asked to cancel the run (a deleted run counts as cancelled)."""
    with session_scope(engine) as session:
        cancel = session.exec(select(col(EvalRun.cancel_requested)).where(col(EvalRun.id) == run_id)).first()
    return cancel is None or bool(cancel)


def update_run_owned(engine: Engine, run_id: str, worker_id: str, **values: Any) -> bool:
    """Set columns of a run this worker still owns; False when it lost the run."""
    values["updated_at"] = utcnow()
    with session_scope(engine) as session:
        result = session.exec(update(EvalRun).where(*owned(run_id, worker_id)).values(**values))
    return bool(result.rowcount)


def release_run(engine: Engine, run_id: str, worker_id: str) -> None:
    """Put a run back in the queue (worker shutting down): it resumes later without redoing its written items."""
    with session_scope(engine) as session:
        session.exec(
            update(EvalRun)
            .where(*owned(run_id, worker_id))
            .values(
                status=EvalRunStatus.queued,
                worker_id=None,
                heartbeat_at=None,
                updated_at=utcnow(),
                attempts=col(EvalRun.attempts) - 1,
            )
        )  # a graceful hand-back is not a failed attempt


def finish_run(
    engine: Engine,
    run_id: str,
    worker_id: str,
    status: EvalRunStatus,
    *,
    error: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """End a run this worker owns with a terminal status (and the error, or other columns); False when lost."""
    if not status.is_terminal:
        raise ValueError(f"{status} is not a terminal status")
    now = utcnow()
    values.update(status=status, error=error, finished_at=now, updated_at=now, heartbeat_at=now)
    with session_scope(engine) as session:
        result = session.exec(update(EvalRun).where(*owned(run_id, worker_id)).values(**values))
    return bool(result.rowcount)
