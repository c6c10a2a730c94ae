"""Training time estimates: the device, fixed and per-step costs, and calibration on finished jobs (issue #17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from app.datasets.validation.estimate import estimate, table_pace
from app.datasets.validation.modeltable import resolve_model
from app.datasets.validation.pace import current_pace
from app.engine.catalog import SMOLLM2
from app.tables import Job, JobStatus, Snapshot

SMALL_JOB = [40] * 15  # the case: 15 short examples, default epochs (6), batch 1: 90 steps


def finished_job(session: Session, seconds: float, tokens: int, n_examples: int, epochs: int, batch: int) -> Job:
    """A succeeded local SmolLM2 job that took `seconds`."""
    snapshot = Snapshot(path="x.jsonl", sha256="0" * 64, n_examples=n_examples)
    session.add(snapshot)
    session.commit()
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    job = Job(
        model=SMOLLM2,
        status=JobStatus.succeeded,
        trained_tokens=tokens,
        hyperparameters={"n_epochs": epochs, "batch_size": batch},
        training_snapshot_id=snapshot.id,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
    )
    session.add(job)
    session.commit()
    return job


def test_a_small_job_with_many_steps_is_not_estimated_from_its_tokens_alone():
    info = resolve_model(SMOLLM2)
    pace = table_pace(info, "cpu")
    assert pace is not None
    result = estimate(info, SMALL_JOB, pace=pace)
    assert (result.n_epochs, result.batch_size, result.n_steps) == (6, 1, 90)
    # The old estimate was tokens / throughput alone (3,600 / 300 = 12 s). Measured on the quiet reference machine
    # (bench/README.md), a job's start and its steps cost more than its tokens when they are few: 100 steps of
    # 6,070 tokens took 54.6 s, 2.7x their tokens at 300 tokens/s. The estimate counts all three.
    tokens_alone = result.charged_tokens / pace.tokens_per_second
    assert result.training_seconds == pytest.approx(pace.seconds(result.charged_tokens, 90), abs=0.1)
    assert result.training_seconds is not None and result.training_seconds > 2 * tokens_alone
    assert result.device == "cpu" and "no finished job" in result.time_basis


def test_finished_jobs_calibrate_the_pace_and_the_estimate_says_so(session):
    info = resolve_model(SMOLLM2)
    base = current_pace(session, info)
    assert base is not None and base.device == "cpu" and base.n_jobs == 0 and base.scale == 1.0
    predicted = base.seconds(5586, 90)
    finished_job(session, predicted * 2.0, 5586, 15, 6, 1)
    finished_job(session, base.seconds(2000, 20) * 2.4, 2000, 20, 1, 1)
    pace = current_pace(session, info)
    assert pace is not None and pace.n_jobs == 2 and pace.scale == pytest.approx(2.2, rel=0.01)
    result = estimate(info, SMALL_JOB, pace=pace)
    assert result.training_seconds == pytest.approx(2.2 * base.seconds(result.charged_tokens, 90), rel=0.01)
    assert result.time_basis == "calibrated on 2 finished jobs on this machine"


def test_jobs_of_other_models_or_unfinished_ones_do_not_calibrate(session):
    job = finished_job(session, 900, 5586, 15, 6, 1)
    job.model = "gpt-4o-mini-2024-07-18"
    session.add(job)
    running = finished_job(session, 900, 5586, 15, 6, 1)
    running.status = JobStatus.running
    session.add(running)
    session.commit()
    pace = current_pace(session, resolve_model(SMOLLM2))
    assert pace is not None and pace.n_jobs == 0
