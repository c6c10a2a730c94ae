"""Job pages: the list with live badges and filters, a job's page, its CSV, and guarded actions."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlmodel import Session

from app.settings.store import MAINTENANCE, set_value
from app.tables import Checkpoint, Dataset, Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow


def make_job(session: Session, status=JobStatus.running, **fields) -> Job:
    job = Job(model="tiny-llama", status=status, started_at=utcnow() - timedelta(seconds=90), **fields)
    session.add(job)
    session.commit()
    return job


def add_metrics(session: Session, job_id: str, steps: int, total: int) -> None:
    for step in range(1, steps + 1):
        session.add(
            JobEvent(
                job_id=job_id,
                type="metrics",
                message=f"Step {step}/{total}",
                data={
                    "step": step,
                    "total_steps": total,
                    "train_loss": 3.0 / step,
                    "valid_loss": 3.2 / step,
                    "train_mean_token_accuracy": 0.1 * step,
                },
            )
        )
    session.commit()


def test_running_job_page_shows_progress_log_and_connects_to_its_stream(client, session):
    set_value(session, MAINTENANCE, True)  # the cancel button shows only while maintenance is on
    job = make_job(session, hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0})
    add_metrics(session, job.id, steps=3, total=12)
    session.add(JobEvent(job_id=job.id, message="<b>tokenizer</b> loaded"))
    session.commit()
    html = client.get(f"/jobs/{job.id}").text
    assert "step 3 of 12" in html
    assert 'aria-valuenow="25"' in html
    assert f'sse-connect="/jobs/{job.id}/events/stream?after=' in html
    assert 'sse-swap="log"' in html and 'sse-swap="metrics"' in html and 'sse-close="end"' in html
    assert "&lt;b&gt;tokenizer&lt;/b&gt; loaded" in html and "<b>tokenizer</b>" not in html
    assert "learning rate multiplier" in html and "Cancel job" in html
    assert "Estimated finish" in html


def test_job_page_embeds_the_metrics_series_for_the_chart(client, session):
    job = make_job(session)
    add_metrics(session, job.id, steps=2, total=4)
    html = client.get(f"/jobs/{job.id}").text
    raw = html.split("data-points='", 1)[1].split("'", 1)[0]
    points = json.loads(raw.replace("&#34;", '"'))
    assert [p["step"] for p in points] == [1, 2]
    assert points[1]["train_loss"] == 1.5 and points[1]["valid_loss"] == 1.6


def test_finished_job_page_does_not_stream_and_compares_estimate_with_actual(client, session):
    set_value(session, MAINTENANCE, True)  # the delete button shows only while maintenance is on
    job = make_job(
        session,
        status=JobStatus.succeeded,
        finished_at=utcnow(),
        trained_tokens=1234,
        estimate={"charged_tokens": 1200, "training_seconds_cpu": 80.0, "cost_usd": None},
        fine_tuned_model="ft:tiny-llama:demo:x",
    )
    html = client.get(f"/jobs/{job.id}").text
    assert "sse-connect" not in html
    assert "Estimate vs actual" in html and "1,200" in html and "1,234" in html
    assert "Cancel job" not in html
    assert "Delete tuned model" in html


def test_checkpoints_offer_chat_with_the_checkpoint_in_the_playground(client, session):
    job = make_job(session)
    session.add(
        Checkpoint(
            job_id=job.id,
            step_number=10,
            fine_tuned_model_checkpoint="ft:tiny:demo:ckpt-step-10",
            metrics={"train_loss": 0.5},
        )
    )
    session.commit()
    html = client.get(f"/jobs/{job.id}").text
    assert "/playground?model=ft%3Atiny%3Ademo%3Ackpt-step-10" in html
    assert "Chat with this checkpoint" in html


def test_result_csv_lists_each_metrics_step(client, session):
    job = make_job(session)
    add_metrics(session, job.id, steps=3, total=3)
    response = client.get(f"/jobs/{job.id}/results.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["train_loss"]) == 1.0


def test_jobs_list_filters_by_status_and_polls_only_while_jobs_are_live(client, session):
    running = make_job(session)
    done = make_job(session, status=JobStatus.failed, finished_at=utcnow())
    html = client.get("/jobs").text
    assert running.id in html and done.id in html and 'hx-trigger="every 2s"' in html
    html = client.get("/jobs?status=failed").text
    assert done.id in html and running.id not in html and "every 2s" not in html
    fragment = client.get("/jobs?status=running", headers={"HX-Request": "true"}).text
    assert 'id="jobs-list"' in fragment and "<html" not in fragment


def test_jobs_list_filters_by_dataset(client, session):
    ds = Dataset(name="Support replies")
    session.add(ds)
    session.commit()
    mine = make_job(session, dataset_id=ds.id)
    other = make_job(session)
    html = client.get(f"/jobs?dataset_id={ds.id}").text
    assert mine.id in html and other.id not in html


def test_cancel_flags_a_running_job_and_is_refused_when_maintenance_is_off(client, session):
    job = make_job(session)
    set_value(session, MAINTENANCE, False)
    refused = client.post(f"/jobs/{job.id}/cancel", headers={"HX-Request": "true"})
    assert refused.status_code == 403 and "switched off" in refused.text
    assert "Cancel job" not in client.get(f"/jobs/{job.id}").text
    set_value(session, MAINTENANCE, True)
    client.post(f"/jobs/{job.id}/cancel", headers={"HX-Request": "true"})
    session.expire_all()
    assert session.get(Job, job.id).cancel_requested is True


def test_deleting_the_tuned_model_is_hidden_and_refused_while_switched_off(client, session, settings):
    job = make_job(session, status=JobStatus.succeeded, finished_at=utcnow(), fine_tuned_model="ft:tiny:x:1")
    session.add(TunedModel(id="ft:tiny:x:1", job_id=job.id, base_model="tiny-llama"))
    session.commit()
    set_value(session, MAINTENANCE, False)
    assert "Delete tuned model" not in client.get(f"/jobs/{job.id}").text
    assert client.post(f"/jobs/{job.id}/delete-model").status_code == 403
    set_value(session, MAINTENANCE, True)
    response = client.post(f"/jobs/{job.id}/delete-model", follow_redirects=False)
    assert response.status_code == 303
    session.expire_all()
    assert session.get(TunedModel, "ft:tiny:x:1").deleted_at is not None


def test_unknown_job_page_is_a_friendly_404(client):
    response = client.get("/jobs/ftjob-missing")
    assert response.status_code == 404 and "ftjob-missing" in response.text


def test_the_event_log_shows_each_training_step_once(client, session):
    job = make_job(session)
    data = {"step": 1, "total_steps": 2, "train_loss": 1.5}
    session.add(JobEvent(job_id=job.id, message="Step 1/2: training loss=1.5000"))
    session.add(JobEvent(job_id=job.id, type="metrics", message="Step 1/2", data=data))
    session.add(
        JobEvent(job_id=job.id, type="metrics", message="Step 2/2: training loss=1.2", data={**data, "step": 2})
    )
    session.commit()
    html = client.get(f"/jobs/{job.id}").text
    assert html.count("Step 1/2") == 1  # the bare metrics mirror of a logged step is left to the chart
    assert "Step 2/2: training loss=1.2" in html  # a metrics event that carries its own line (OpenAI's) stays
