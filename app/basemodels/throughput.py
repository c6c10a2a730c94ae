"""Measured speed on this machine, per base model: training tokens/s from finished local jobs, chat tokens/s from
the chat engine's decoding (app.engine.throughput). Derived when the list is shown; nothing new is stored here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.engine.throughput import ChatSpeeds
from app.tables import Job, JobEvent, JobStatus

FINISHED = "New fine-tuned model created"  # the trainer's last event, with the run's seconds and tokens/s
RECENT_JOBS = 200  # the newest finished local jobs looked at (the latest one per base model is shown)


@dataclass(frozen=True)
class Throughput:
    """A base model's latest measured speeds; None where not measured yet."""

    training_tokens_per_second: float | None = None
    training_job: str | None = None  # the job it was measured on
    training_processes: int | None = None
    training_device: str | None = None
    chat_tokens_per_second: float | None = None


def _training_speed(data: Any, trained_tokens: int | None, attempts: int) -> float | None:
    if not isinstance(data, dict):
        return None
    speed = data.get("tokens_per_second")
    if isinstance(speed, int | float) and speed > 0:
        return float(speed)
    # Jobs from before the trainer reported it: billed tokens over the run's seconds, exact for one attempt only.
    seconds = data.get("seconds")
    if attempts <= 1 and trained_tokens and isinstance(seconds, int | float) and seconds > 0:
        return round(trained_tokens / seconds, 1)
    return None


def measured_speeds(session: Session, settings: Settings) -> dict[str, Throughput]:
    """Every base model with a measured training or chat speed, by name."""
    rows = session.exec(
        select(Job, JobEvent)
        .join(JobEvent, col(JobEvent.job_id) == col(Job.id))
        .where(
            col(Job.provider) == "local",
            col(Job.status) == JobStatus.succeeded,
            col(JobEvent.message).startswith(FINISHED),
        )
        .order_by(col(JobEvent.seq).desc())
        .limit(RECENT_JOBS)
    ).all()
    training: dict[str, Throughput] = {}
    for job, event in rows:
        speed = _training_speed(event.data, job.trained_tokens, job.attempts)
        if job.model in training or speed is None:
            continue  # the newest job of each model
        training[job.model] = Throughput(speed, job.id, event.data.get("processes") or 1, event.data.get("device"))
    chat = {name: value.tokens_per_second for name, value in ChatSpeeds(Path(settings.data_dir)).read().items()}
    return {
        name: replace(training.get(name, Throughput()), chat_tokens_per_second=chat.get(name))
        for name in {*training, *chat}
    }
