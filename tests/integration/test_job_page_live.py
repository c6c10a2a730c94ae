"""A running job's page: resolved hyperparameters, a running trained-tokens count, checkpoint metrics in columns."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from app.tables import Checkpoint, Job, JobEvent, JobStatus
from app.tables.common import utcnow


def running_job(session: Session, **fields) -> Job:
    job = Job(model="tiny-llama", status=JobStatus.running, started_at=utcnow() - timedelta(seconds=30), **fields)
    session.add(job)
    session.commit()
    return job


def test_running_job_shows_resolved_hyperparameters_in_the_live_summary(client, session):
    job = running_job(session, hyperparameters={"n_epochs": "auto", "batch_size": "auto"})
    fragment = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).text
    assert "resolved when training starts" in fragment
    # The local provider writes the engine's resolved values onto the job; the live summary (SSE) shows them.
    job.hyperparameters = {"n_epochs": 3, "batch_size": 4}
    session.add(job)
    session.commit()
    fragment = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).text
    assert 'id="job-hyperparameters"' in fragment
    assert "<dt>n epochs</dt><dd>3</dd>" in fragment and "<dt>batch size</dt><dd>4</dd>" in fragment


def test_running_job_counts_trained_tokens_from_its_steps(client, session):
    job = running_job(session)
    session.add(
        JobEvent(
            job_id=job.id,
            message="Training file has 10 examples, 1000 tokens (600 trained); 3000 tokens over 3 epochs.",
            data={"examples": 10, "tokens": 1000, "trained_tokens": 3000},
        )
    )
    session.add(JobEvent(job_id=job.id, type="metrics", message="Step 3/12", data={"step": 3, "total_steps": 12}))
    session.commit()
    html = client.get(f"/jobs/{job.id}").text
    assert "≈ 750 of 3,000" in html


def test_checkpoint_metrics_are_columns(client, session):
    job = running_job(session)
    session.add(
        Checkpoint(
            job_id=job.id,
            step_number=10,
            fine_tuned_model_checkpoint="ft:tiny:demo:ckpt-step-10",
            metrics={"step": 10, "train_loss": 0.51234567, "valid_loss": 0.6},
        )
    )
    session.commit()
    html = client.get(f"/jobs/{job.id}").text
    assert "<th>train loss</th><th>valid loss</th>" in html
    assert '<td class="num">0.5123</td><td class="num">0.6</td>' in html
    assert "train_loss 0.5123" not in html
