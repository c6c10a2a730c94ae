"""The jobs table as a queue: atomic claim, heartbeats, takeover of stale jobs, and ending a job.

Every function is one short transaction. A worker owns a job while `worker_id` is its id and the job runs;
every write it makes is conditional on that, so a worker that lost its job (taken over after a missed
heartbeat) can never overwrite the new owner's work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from app.jobs.events import add_event
from app.tables import Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from app.tables.db import is_sqlite, session_scope
from app.tables.worker import WorkerRow

MAX_ATTEMPTS = 3
# What a worker's writes are conditional on: the job is still its own and still running (see the docstring).
_RUNNING = col(Job.status) == JobStatus.running


def _owned(job_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a job that this worker still owns and runs."""
    return col(Job.id) == job_id, col(Job.worker_id) == worker_id, _RUNNING


def claim_next(
    engine: Engine,
    worker_id: str,
    providers: list[str],
    *,
    patient: tuple[str, ...] = (),
    patience_seconds: float = 0.0,
) -> str | None:
    """Atomically take the oldest queued job of these providers; its id, or None when there is none.

    Providers in `patient` are taken only once their job has waited `patience_seconds` (a CPU-only worker
    leaves local jobs to GPU workers first; see app/worker/loop.py).
    """
    now = utcnow()
    values = {
        "status": JobStatus.running,
        "worker_id": worker_id,
        "heartbeat_at": now,
        "updated_at": now,
        "attempts": col(Job.attempts) + 1,
    }
    eager = [p for p in providers if p not in patient]
    waited = now - timedelta(seconds=patience_seconds)
    wanted = col(Job.provider).in_(eager) | (col(Job.provider).in_(patient) & (col(Job.updated_at) < waited))
    queued = col(Job.status) == JobStatus.queued
    job_id: str | None
    with session_scope(engine) as session:
        pick = select(col(Job.id)).where(queued, wanted).order_by(col(Job.created_at), col(Job.id)).limit(1)
        if is_sqlite(engine):
            # SQLite serialises writers: the sub-select and the update happen under one write lock, and the
            # status condition makes a lost race update nothing.
            stmt = update(Job).where(col(Job.id) == pick.scalar_subquery(), queued)
            job_id = session.exec(stmt.values(**values).returning(col(Job.id))).scalar_one_or_none()
        else:
            job_id = session.exec(pick.with_for_update(skip_locked=True)).one_or_none()
            if job_id is not None:
                session.exec(update(Job).where(col(Job.id) == job_id).values(**values))
        if job_id is not None:
            session.exec(update(Job).where(col(Job.id) == job_id, col(Job.started_at).is_(None)).values(started_at=now))
    return job_id


def take_over_stale(engine: Engine, worker_id: str, providers: list[str], timeout_seconds: float) -> str | None:
    """Take one running job whose worker stopped heartbeating; its id, or None."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    with session_scope(engine) as session:
        silent = (col(Job.heartbeat_at) < cutoff) | col(Job.heartbeat_at).is_(None)
        stale = (
            select(col(Job.id), col(Job.worker_id))
            .where(_RUNNING, col(Job.provider).in_(providers), silent)
            .order_by(col(Job.created_at))
            .limit(1)
        )
        if not is_sqlite(engine):
            stale = stale.with_for_update(skip_locked=True)
        row = session.exec(stale).first()
        if row is None:
            return None
        job_id, old_worker = row
        now = utcnow()
        # Same cutoff condition again: if the old worker heartbeated meanwhile, nothing changes.
        result = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, _RUNNING, col(Job.worker_id).is_not_distinct_from(old_worker), silent)
            .values(worker_id=worker_id, heartbeat_at=now, updated_at=now, attempts=col(Job.attempts) + 1)
        )
        if not result.rowcount:
            return None
        add_event(
            session,
            job_id,
            "The worker running this job stopped responding; another worker took it over.",
            level="warn",
            commit=False,
        )
        return job_id


def heartbeat(engine: Engine, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Mark the job alive. Returns (still ours, cancel requested)."""
    with session_scope(engine) as session:
        result = session.exec(update(Job).where(*_owned(job_id, worker_id)).values(heartbeat_at=utcnow()))
        cancel = session.exec(select(col(Job.cancel_requested)).where(col(Job.id) == job_id)).first()
    return bool(result.rowcount), bool(cancel)


def update_owned(engine: Engine, job_id: str, worker_id: str, **values: Any) -> bool:
    """Set columns of a job this worker still owns; False when it lost the job."""
    values["updated_at"] = utcnow()
    with session_scope(engine) as session:
        result = session.exec(update(Job).where(*_owned(job_id, worker_id)).values(**values))
    return bool(result.rowcount)


def release(engine: Engine, job_id: str, worker_id: str) -> None:
    """Put a job back in the queue (worker shutting down mid-job); it resumes from its last checkpoint."""
    with session_scope(engine) as session:
        session.exec(
            update(Job)
            .where(*_owned(job_id, worker_id))
            .values(
                status=JobStatus.queued,
                worker_id=None,
                heartbeat_at=None,
                updated_at=utcnow(),
                attempts=col(Job.attempts) - 1,
            )
        )  # a graceful hand-back is not a failed attempt


def finish(
    engine: Engine,
    job_id: str,
    worker_id: str,
    status: JobStatus,
    *,
    error: dict | None = None,
    fine_tuned_model: str | None = None,
    trained_tokens: int | None = None,
    result_files: list[str] | None = None,
    model_path: str | None = None,
) -> bool:
    """End a job this worker owns: terminal status, outcome fields, the TunedModel row and a last event."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "heartbeat_at": now,
        "error": error,
    }
    if fine_tuned_model:
        values["fine_tuned_model"] = fine_tuned_model
    if trained_tokens is not None:
        values["trained_tokens"] = trained_tokens
    if result_files:
        values["result_files"] = result_files
    with session_scope(engine) as session:
        result = session.exec(update(Job).where(*_owned(job_id, worker_id)).values(**values))
        if not result.rowcount:
            return False
        job = session.get_one(Job, job_id)  # the update above just matched it
        if status == JobStatus.succeeded and fine_tuned_model and session.get(TunedModel, fine_tuned_model) is None:
            session.add(
                TunedModel(
                    id=fine_tuned_model, job_id=job_id, provider=job.provider, base_model=job.model, path=model_path
                )
            )
        if status == JobStatus.succeeded:
            closing, level = "The job has successfully completed", "info"
        elif status == JobStatus.cancelled:
            closing, level = "The job was cancelled.", "info"
        else:
            closing, level = f"The job failed: {(error or {}).get('message') or 'no reason given.'}", "error"
        last = session.exec(
            select(col(JobEvent.message))
            .where(col(JobEvent.job_id) == job_id)
            .order_by(col(JobEvent.seq).desc())
            .limit(1)
        ).first()
        if last != closing:  # the provider may have said it already (OpenAI and the engine both do)
            add_event(session, job_id, closing, level=level, commit=False)
    return True


# -- worker presence -------------------------------------------------------------------------------------------
def register_worker(engine: Engine, worker_id: str, providers: list[str], gpu: bool, host: str = "") -> None:
    """Announce a live worker (or refresh it): what it serves and whether it trains on a GPU."""
    now = utcnow()
    with session_scope(engine) as session:
        row = session.get(WorkerRow, worker_id)
        if row is None:
            session.add(
                WorkerRow(id=worker_id, host=host, providers=list(providers), gpu=gpu, started_at=now, seen_at=now)
            )
        else:
            row.providers, row.gpu, row.seen_at = list(providers), gpu, now
            session.add(row)


def touch_worker(engine: Engine, worker_id: str) -> bool:
    """Mark a worker alive now; False when its row is gone (cleaned up as stale), so it should register again."""
    with session_scope(engine) as session:
        result = session.exec(update(WorkerRow).where(col(WorkerRow.id) == worker_id).values(seen_at=utcnow()))
    return bool(result.rowcount)


def unregister_worker(engine: Engine, worker_id: str) -> None:
    """Remove a worker that is stopping cleanly."""
    with session_scope(engine) as session:
        row = session.get(WorkerRow, worker_id)
        if row is not None:
            session.delete(row)


def live_workers(engine: Engine, timeout_seconds: float) -> list[WorkerRow]:
    """Workers seen within timeout_seconds, oldest first (others crashed or lost their host)."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    with session_scope(engine) as session:
        query = select(WorkerRow).where(col(WorkerRow.seen_at) >= cutoff).order_by(col(WorkerRow.started_at))
        return list(session.exec(query).all())


def gpu_worker_serves(engine: Engine, provider: str, timeout_seconds: float) -> bool:
    """Whether a live GPU worker serves this provider (then CPU workers leave its fresh jobs to it)."""
    return any(w.gpu and provider in (w.providers or []) for w in live_workers(engine, timeout_seconds))
