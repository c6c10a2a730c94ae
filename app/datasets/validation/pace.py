"""This machine's training pace for a local model: the model table's figures for the device a job will use,
rescaled by how long this machine's finished jobs of that model really took (derived from the jobs table)."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.datasets.validation.estimate import Pace, table_pace
from app.datasets.validation.modeltable import ModelInfo
from app.engine.chat_tokens import training_device
from app.engine.data import steps_per_epoch
from app.tables import Job, JobStatus, Snapshot

RECENT_JOBS = 20  # the newest finished jobs of a model that calibrate its pace
MIN_SECONDS = 1.0  # shorter "jobs" are test doubles or failures in disguise, not timings


def current_pace(session: Session, info: ModelInfo) -> Pace | None:
    """The pace of `info`'s training on this machine's device; None for a model without any throughput figure."""
    pace = table_pace(info, "gpu" if training_device() == "cuda" else "cpu")
    if pace is None:
        return None
    jobs = session.exec(
        select(Job)
        .where(
            col(Job.provider) == "local",
            col(Job.model) == info.name,
            col(Job.status) == JobStatus.succeeded,
            col(Job.trained_tokens).is_not(None),
            col(Job.started_at).is_not(None),
            col(Job.finished_at).is_not(None),
        )
        .order_by(col(Job.finished_at).desc())
        .limit(RECENT_JOBS)
    ).all()
    ratios = []
    for job in jobs:
        work = _job_work(session, job, pace.device)
        if work is None:
            continue
        seconds = _seconds(job.started_at, job.finished_at)
        predicted = pace.seconds(int(job.trained_tokens or 0), *work)
        if seconds >= MIN_SECONDS and predicted > 0:
            ratios.append(seconds / predicted)
    if not ratios:
        return pace
    return replace(pace, scale=round(statistics.median(ratios), 3), n_jobs=len(ratios))


def _seconds(started: datetime | None, finished: datetime | None) -> float:
    if started is None or finished is None:
        return 0.0
    if (started.tzinfo is None) != (finished.tzinfo is None):  # SQLite may hand one back naive
        started, finished = started.replace(tzinfo=None), finished.replace(tzinfo=None)
    return (finished - started).total_seconds()


def _job_work(session: Session, job: Job, device: str) -> tuple[int, int] | None:
    """(steps, evaluated tokens) of a finished job: from its launch estimate, else from its hyperparameters and
    training snapshot. None for a job that ran on another device or whose steps cannot be known."""
    est: dict[str, Any] = job.estimate if isinstance(job.estimate, dict) else {}
    if est.get("device") and est["device"] != device:
        return None
    hyper = job.hyperparameters if isinstance(job.hyperparameters, dict) else {}
    epochs, batch = hyper.get("n_epochs"), hyper.get("batch_size")
    snapshot = session.get(Snapshot, job.training_snapshot_id) if job.training_snapshot_id else None
    if isinstance(epochs, int) and isinstance(batch, int) and snapshot is not None and snapshot.n_examples:
        steps = steps_per_epoch(snapshot.n_examples, batch) * epochs  # the resolved values the engine ran with
    elif isinstance(est.get("n_steps"), int):
        steps = est["n_steps"]
    else:
        return None
    return steps, int(est.get("eval_tokens") or 0)
