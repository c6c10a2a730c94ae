"""Job events and checkpoints: written by the worker in short transactions, read by pages, /api, /v1 and SSE.

Events are de-duplicated by their id (a provider's events are polled again after a restart), and ordered by
`seq`, which is also the SSE event id a live stream resumes from. On PostgreSQL every inserted event is announced
with NOTIFY at commit by a trigger (migration pg09), whoever writes it; see app/jobs/event_notify.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import NotFound
from app.tables import Checkpoint, Job, JobEvent
from app.tables.common import new_id, utcnow
from app.tables.db import session_scope


def _ts(created_at: int | float | datetime | None) -> datetime:
    if created_at is None:
        return utcnow()
    if isinstance(created_at, datetime):
        return created_at
    return datetime.fromtimestamp(created_at, UTC)


def add_event(
    session: Session,
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: Any = None,
    event_id: str | None = None,
    created_at: int | datetime | None = None,
    commit: bool = True,
) -> JobEvent | None:
    """Append an event to a job unless one with the same id exists; returns it, or None for a duplicate."""
    if event_id and session.exec(select(JobEvent.seq).where(JobEvent.id == event_id)).first() is not None:
        return None
    event = JobEvent(
        id=event_id or new_id("ftevent"),
        job_id=job_id,
        level=level,
        type=type,
        message=message,
        data=data,
        created_at=_ts(created_at),
    )
    session.add(event)
    if commit:
        session.commit()
    return event


def record_event(engine: Engine, job_id: str, message: str, **kwargs: Any) -> JobEvent | None:
    """add_event in its own short transaction (what the worker uses); a racing duplicate is ignored."""
    try:
        with session_scope(engine) as session:
            return add_event(session, job_id, message, commit=False, **kwargs)
    except IntegrityError:
        return None


def record_checkpoint(
    engine: Engine,
    job_id: str,
    step: int,
    model_name: str,
    metrics: dict | None = None,
    path: str | None = None,
    checkpoint_id: str | None = None,
) -> Checkpoint | None:
    """Store a checkpoint once (by id, or by job and step); returns None when it was already there."""
    with session_scope(engine) as session:
        query = select(Checkpoint).where(Checkpoint.job_id == job_id)
        query = (
            query.where(Checkpoint.id == checkpoint_id)
            if checkpoint_id
            else query.where(Checkpoint.step_number == step)
        )
        if session.exec(query).first() is not None:
            return None
        cp = Checkpoint(
            job_id=job_id, step_number=step, fine_tuned_model_checkpoint=model_name, metrics=metrics or {}, path=path
        )
        if checkpoint_id:
            cp.id = checkpoint_id
        session.add(cp)
        return cp


def get_job(session: Session, job_id: str) -> Job:
    """A job by id, or NotFound (the jobs service's `get_job`; here so that event reads can check the job)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"No fine-tuning job with id {job_id!r}.", code="job_not_found", param="job_id")
    return job


def list_events(
    session: Session,
    job_id: str,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[JobEvent]:
    """A job's events, oldest first (or newest first), optionally only those after/before a seq."""
    get_job(session, job_id)
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after_seq is not None:
        query = query.where(col(JobEvent.seq) > after_seq)
    if before_seq is not None:
        query = query.where(col(JobEvent.seq) < before_seq)
    order = col(JobEvent.seq).desc() if newest_first else col(JobEvent.seq)
    query = query.order_by(order)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def events_page(
    session: Session, job_id: str, *, after: str | None = None, limit: int = 20
) -> tuple[list[JobEvent], bool]:
    """OpenAI's list_events page: newest first, `after` an event id (older events follow it), and has_more."""
    before_seq = None
    if after:
        before_seq = session.exec(select(JobEvent.seq).where(JobEvent.id == after, JobEvent.job_id == job_id)).first()
        if before_seq is None:
            raise NotFound(f"No event {after!r} in job {job_id!r}.", code="event_not_found", param="after")
    rows = list_events(session, job_id, before_seq=before_seq, limit=limit + 1, newest_first=True)
    return rows[:limit], len(rows) > limit


def list_checkpoints(session: Session, job_id: str, *, newest_first: bool = True) -> list[Checkpoint]:
    """A job's checkpoints, newest step first (as OpenAI lists them)."""
    get_job(session, job_id)
    step = col(Checkpoint.step_number)
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(step.desc() if newest_first else step)
    return list(session.exec(query))


def latest_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    """The checkpoint with the highest step, or None."""
    rows = list_checkpoints(session, job_id)
    return rows[0] if rows else None


def last_reported_step(session: Session, job_id: str) -> int:
    """The step of the job's latest metrics event (0 when none): how far its attempts have reported."""
    last = session.exec(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, col(JobEvent.type) == "metrics")
        .order_by(col(JobEvent.seq).desc())
    ).first()
    data = last.data if last is not None and isinstance(last.data, dict) else {}
    step = data.get("step")
    return step if isinstance(step, int) else 0
