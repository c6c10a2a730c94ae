"""In Chromium (issue #21): a finished job lists the examples its model could not learn; open a high-loss example
from the job page in the editor; a loss spike is marked on the chart and names its batch under it."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.datasets.snapshots import snapshot_dataset
from app.engine.loss_records import BATCHES_FILE, LOSSES_FILE, ExampleLoss, write_example_losses
from app.jobs.jobs import JobRequest, create_job
from app.tables import Job, JobEvent, JobStatus
from tests.e2e.conftest import TINY, screenshot
from tests.support.builders import make_dataset
from tests.support.tiny_jobs import WRONG, dataset_of_records, echo_records

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_WAIT_MS = 240_000  # six epochs of 32 tiny examples and the final pass, on 2 busy cores


def _echo_job(server) -> str:
    """A real job on the server's worker whose data holds deliberately wrong answers; its id."""
    hyper = {"n_epochs": 6, "batch_size": 4, "learning_rate_multiplier": 50, "lora_rank": 8}
    with Session(server.app.state.engine, expire_on_commit=False) as session:
        dataset = dataset_of_records(session, echo_records(), name="echo with wrong answers")
        request = JobRequest(dataset_id=dataset.id, model=TINY, seed=7, hyperparameters=hyper, accept_warnings=True)
        return create_job(session, server.app.state.settings, request).id


def test_open_a_high_loss_example_from_the_job_page(page, e2e_server):
    job_id = _echo_job(e2e_server)
    page.goto(f"/jobs/{job_id}")
    card = page.locator("#job-example-losses")
    expect(card).to_contain_text("after the last step")  # pending while it trains (or already listed)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_WAIT_MS)
    rows = page.locator("#high-loss-examples tbody tr")
    expect(rows.first).to_be_visible(timeout=30_000)  # the card reloads itself once the job has ended
    lines = [int(x) for x in rows.evaluate_all("rows => rows.map(r => r.dataset.line)")]
    assert set(WRONG) <= set(lines[: len(WRONG) + 2]), lines
    screenshot(page, "job-high-loss")

    worst = rows.first.locator("a.loss-example")
    preview = worst.inner_text()
    answer = preview.split(" → ", 1)[1]
    worst.click()
    page.wait_for_url("**/examples/*")
    expect(page.locator("h1")).to_have_text(f"Example {lines[0] + 1}")  # no validation split: line = position
    expect(page.locator("main")).to_contain_text(answer)


def test_a_loss_spike_is_marked_on_the_chart_with_its_batch(page, e2e_server):
    settings = e2e_server.app.state.settings
    with Session(e2e_server.app.state.engine, expire_on_commit=False) as session:
        dataset = make_dataset(session, n_train=12, name="spiky")
        snap = snapshot_dataset(session, settings, dataset.id)
        session.flush()  # the snapshot row before the job that refers to it
        job = Job(
            provider="local",
            model=TINY,
            status=JobStatus.succeeded,
            dataset_id=dataset.id,
            training_snapshot_id=snap.id,
        )
        session.add(job)
        session.commit()
        curve = [2.0, 1.6, 1.4, 1.3, 1.25, 1.2, 3.0, 1.15, 1.1, 1.1, 1.05, 1.0]
        for step, loss in enumerate(curve, start=1):
            data = {"step": step, "total_steps": len(curve), "train_loss": loss}
            session.add(JobEvent(job_id=job.id, type="metrics", message=f"Step {step}/12", data=data))
        session.commit()
        job_id = job.id
    out = settings.data_dir / "jobs" / job_id
    out.mkdir(parents=True)
    write_example_losses(out / LOSSES_FILE, [ExampleLoss("train", i, 0.2 + i / 10, 5) for i in range(12)])
    batches = [{"step": s, "lines": [(4 * s + k) % 12 for k in range(4)]} for s in range(1, 13)]
    (out / BATCHES_FILE).write_text("".join(json.dumps(b) + "\n" for b in batches))

    page.goto(f"/jobs/{job_id}")
    marker = page.locator("#loss-chart svg .spike")
    expect(marker).to_have_count(1)
    assert marker.get_attribute("data-spike-step") == "7"
    assert marker.locator("title").text_content().startswith("Loss spike at step 7: 3.000")
    spike = page.locator("#spike-7")
    expect(spike).to_contain_text("Step 7")
    expect(spike.locator(".spike-batch li")).to_have_count(4)  # lines 5-8 of step 7, worst first
    expect(spike.locator(".spike-batch li").first).to_contain_text("line 8")
    marker.click()
    expect(spike).to_be_in_viewport()
    screenshot(page, "job-loss-spike")
