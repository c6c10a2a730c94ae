"""The jobs table as a queue: atomic claim, heartbeats, takeover of stale jobs, and ending a job.

Every function is one short transaction. A worker owns a job while `worker_id` is its id and the job runs;
every write it makes is conditional on that, so a worker that lost its job (taken over after a missed
heartbeat) can never overwrite the new owner's work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from app.jobs.events import add_event
from app.tables import Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from app.tables.db import is_sqlite, session_scope
from app.tables.worker import WorkerRow

RUNNING = JobStatus.running.value
MAX_ATTEMPTS = 3


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
        "status": RUNNING,
        "worker_id": worker_id,
        "heartbeat_at": now,
        "updated_at": now,
        "attempts": Job.attempts + 1,
    }
    eager = [p for p in providers if p not in patient]
    waited = now - timedelta(seconds=patience_seconds)
    wanted = col(Job.provider).in_(eager) | (col(Job.provider).in_(patient) & (col(Job.updated_at) < waited))
    with session_scope(engine) as session:
        pick = sa_select(Job.id).where(Job.status == JobStatus.queued.value, wanted)
        pick = pick.order_by(col(Job.created_at), col(Job.id)).limit(1)
        if is_sqlite(engine):
            # SQLite serialises writers: the sub-select and the update happen under one write lock, and the
            # status condition makes a lost race update nothing.
            stmt = update(Job).where(Job.id == pick.scalar_subquery(), Job.status == JobStatus.queued.value)
            result = session.exec(stmt.values(**values).returning(Job.id))
            job_id = result.scalar_one_or_none()
        else:
            job_id = session.exec(pick.with_for_update(skip_locked=True)).scalar_one_or_none()
            if job_id is not None:
                session.exec(update(Job).where(Job.id == job_id).values(**values))
        if job_id is not None:
            session.exec(update(Job).where(Job.id == job_id, col(Job.started_at).is_(None)).values(started_at=now))
    return job_id


def take_over_stale(engine: Engine, worker_id: str, providers: list[str], timeout_seconds: float) -> str | None:
    """Take one running job whose worker stopped heartbeating; its id, or None."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    with session_scope(engine) as session:
        stale = (
            sa_select(Job.id, Job.worker_id)
            .where(
                Job.status == RUNNING,
                col(Job.provider).in_(providers),
                (col(Job.heartbeat_at) < cutoff) | col(Job.heartbeat_at).is_(None),
            )
            .order_by(col(Job.created_at))
            .limit(1)
        )
        if not is_sqlite(engine):
            stale = stale.with_for_update(skip_locked=True)
        row = session.exec(stale).first()
        if row is None:
            return None
        now = utcnow()
        # Same cutoff condition again: if the old worker heartbeated meanwhile, nothing changes.
        result = session.exec(
            update(Job)
            .where(
                Job.id == row.id,
                Job.status == RUNNING,
                col(Job.worker_id).is_not_distinct_from(row.worker_id),
                (col(Job.heartbeat_at) < cutoff) | col(Job.heartbeat_at).is_(None),
            )
            .values(worker_id=worker_id, heartbeat_at=now, updated_at=now, attempts=Job.attempts + 1)
        )
        if not result.rowcount:
            return None
        add_event(
            session,
            row.id,
            "The worker running this job stopped responding; another worker took it over.",
            level="warn",
            commit=False,
        )
        return row.id


def heartbeat(engine: Engine, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Mark the job alive. Returns (still ours, cancel requested)."""
    with session_scope(engine) as session:
        result = session.exec(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == RUNNING)
            .values(heartbeat_at=utcnow())
        )
        cancel = session.exec(sa_select(Job.cancel_requested).where(Job.id == job_id)).scalar()
    return bool(result.rowcount), bool(cancel)


def update_owned(engine: Engine, job_id: str, worker_id: str, **values: Any) -> bool:
    """Set columns of a job this worker still owns; False when it lost the job."""
    values["updated_at"] = utcnow()
    with session_scope(engine) as session:
        result = session.exec(
            update(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == RUNNING).values(**values)
        )
    return bool(result.rowcount)


def release(engine: Engine, job_id: str, worker_id: str) -> None:
    """Put a job back in the queue (worker shutting down mid-job); it resumes from its last checkpoint."""
    with session_scope(engine) as session:
        session.exec(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == RUNNING)
            .values(
                status=JobStatus.queued.value,
                worker_id=None,
                heartbeat_at=None,
                updated_at=utcnow(),
                attempts=Job.attempts - 1,
            )
        )  # a graceful hand-back is not a failed attempt


def finish(
    engine: Engine,
    job_id: str,
    worker_id: str,
    status: str,
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
        result = session.exec(
            update(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == RUNNING).values(**values)
        )
        if not result.rowcount:
            return False
        job = session.get(Job, job_id)
        if (
            status == JobStatus.succeeded.value
            and fine_tuned_model
            and session.get(TunedModel, fine_tuned_model) is None
        ):
            session.add(
                TunedModel(
                    id=fine_tuned_model, job_id=job_id, provider=job.provider, base_model=job.model, path=model_path
                )
            )
        if status == JobStatus.succeeded.value:
            closing, level = "The job has successfully completed", "info"
        elif status == JobStatus.cancelled.value:
            closing, level = "The job was cancelled.", "info"
        else:
            closing, level = f"The job failed: {(error or {}).get('message') or 'no reason given.'}", "error"
        last = session.exec(
            sa_select(JobEvent.message).where(JobEvent.job_id == job_id).order_by(col(JobEvent.seq).desc()).limit(1)
        ).scalar()
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
        result = session.exec(update(WorkerRow).where(WorkerRow.id == worker_id).values(seen_at=utcnow()))
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
        rows = (
            session.exec(
                sa_select(WorkerRow).where(col(WorkerRow.seen_at) >= cutoff).order_by(col(WorkerRow.started_at))
            )
            .scalars()
            .all()
        )
        return list(rows)


def gpu_worker_serves(engine: Engine, provider: str, timeout_seconds: float) -> bool:
    """Whether a live GPU worker serves this provider (then CPU workers leave its fresh jobs to it)."""
    return any(w.gpu and provider in (w.providers or []) for w in live_workers(engine, timeout_seconds))
