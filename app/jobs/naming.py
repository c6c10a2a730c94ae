"""Friendly names for jobs, tuned models and checkpoints: "support-bot · SmolLM2-135M · Pirate voice · Dec 3".

Ids like `ft:SmolLM2-135M-Instruct:tuneboard:ftjob-ee7d…` stay the reference (pages keep them one click away);
these names are what a person reads in lists and pickers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from app.tables import Checkpoint, Dataset, Job, TunedModel

SEPARATOR = " · "
_DATE_STAMP = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # OpenAI's snapshots: gpt-4o-mini-2024-07-18
_TUNING_TAIL = re.compile(r"-(instruct|chat|it)$", re.IGNORECASE)


def short_base_name(model: str) -> str:
    """A base model's short name: no organisation prefix, no OpenAI date stamp, no "-Instruct" tail."""
    name = model.rsplit("/", 1)[-1]
    name = _TUNING_TAIL.sub("", _DATE_STAMP.sub("", name))
    return name or model


def short_date(when: datetime | date, today: date | None = None) -> str:
    """ "Dec 3" within the current year, "Dec 3, 2025" otherwise."""
    today = today or date.today()
    text = f"{when:%b} {when.day}"
    return text if when.year == today.year else f"{text}, {when.year}"


def friendly_name(
    *,
    base_model: str,
    created_at: datetime | date | None,
    suffix: str | None = None,
    dataset_name: str | None = None,
    today: date | None = None,
) -> str:
    """Suffix (if any), base model's short name, dataset name and date, joined by " · "."""
    parts = [suffix, short_base_name(base_model) if base_model else None, dataset_name]
    if created_at is not None:
        parts.append(short_date(created_at, today))
    return SEPARATOR.join(p.strip() for p in parts if p and p.strip())


def job_name(job: Job, dataset_name: str | None = None, today: date | None = None) -> str:
    """A job's friendly name, from its suffix, base model, dataset and creation date."""
    return friendly_name(
        base_model=job.model, created_at=job.created_at, suffix=job.suffix, dataset_name=dataset_name, today=today
    )


def _dataset_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Dataset).where(col(Dataset.id).in_(wanted))).all()
    return {d.id: d.name for d in rows if d.id is not None}


def job_names(session: Session, jobs: Iterable[Job], today: date | None = None) -> dict[str, str]:
    """Friendly names of these jobs by job id (their datasets read in one query)."""
    jobs = list(jobs)
    names = _dataset_names(session, (j.dataset_id for j in jobs))
    return {j.id: job_name(j, names.get(j.dataset_id) if j.dataset_id else None, today) for j in jobs}


def model_names(session: Session, model_ids: Iterable[str], today: date | None = None) -> dict[str, str]:
    """Friendly names of tuned models and checkpoints by id; ids that are neither (base models) are left out."""
    ids = {m for m in model_ids if m}
    if not ids:
        return {}
    tuned = session.exec(select(TunedModel).where(col(TunedModel.id).in_(ids))).all()
    checkpoints = session.exec(
        select(Checkpoint).where(col(Checkpoint.fine_tuned_model_checkpoint).in_(ids - {t.id for t in tuned}))
    ).all()
    job_ids = {t.job_id for t in tuned if t.job_id} | {c.job_id for c in checkpoints}
    jobs = {j.id: j for j in session.exec(select(Job).where(col(Job.id).in_(job_ids))).all()} if job_ids else {}
    names = job_names(session, jobs.values(), today)
    out: dict[str, str] = {}
    for model in tuned:
        job = jobs.get(model.job_id or "")
        out[model.id] = (
            names[job.id]
            if job
            else friendly_name(base_model=model.base_model, created_at=model.created_at, today=today)
        )
    for cp in checkpoints:
        job = jobs.get(cp.job_id)
        if job is not None:
            out[cp.fine_tuned_model_checkpoint] = f"{names[job.id]}{SEPARATOR}step {cp.step_number}"
    return out


def relative_time(when: datetime, now: datetime | None = None) -> str:
    """How long ago, in a list's few characters: "just now", "5 min ago", "3 h ago", "2 d ago", then the date."""
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # SQLite hands timestamps back naive; they are stored in UTC
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return short_date(when, now.date())
