"""A job's examples with the highest final loss, mapped back to the dataset's examples through the snapshot's id
sidecar (deleted or edited since say so), its loss spikes with their batches, the API and the job page's card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.datasets.examples import delete_example
from app.datasets.snapshots import snapshot_example_ids
from app.datasets.validation import apply_check
from app.engine.loss_records import BATCHES_FILE, LOSSES_FILE, ExampleLoss, write_example_losses
from app.jobs.example_losses import MISSING, PENDING, READY, UNSUPPORTED, job_example_losses, preview
from app.jobs.jobs import JobRequest, create_job
from app.tables import Dataset, Example, Job, JobEvent, JobStatus, Snapshot
from tests.conftest import API_KEY
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401


def _dataset(session: Session) -> Dataset:
    """16 examples; every fourth one is in the validation split, so training lines and positions differ."""
    dataset = Dataset(name="echo")
    session.add(dataset)
    session.commit()
    for position in range(16):
        example = Example(
            dataset_id=dataset.id,
            position=position,
            messages=[
                {"role": "user", "content": f"Say w{position}"},
                {"role": "assistant", "content": f"w{position}"},
            ],
            split="validation" if position % 4 == 3 else None,
        )
        apply_check(example)
        session.add(example)
    session.commit()
    return dataset


def _examples(session: Session, dataset: Dataset) -> list[Example]:
    query = select(Example).where(Example.dataset_id == dataset.id).order_by(col(Example.position))
    return list(session.exec(query).all())


def _finish(session: Session, settings, job: Job, losses: list[ExampleLoss], train_losses: list[float]) -> Path:
    """What the engine and the worker leave: the files in the job's output, metrics events, a succeeded job."""
    out = settings.data_dir / "jobs" / job.id
    out.mkdir(parents=True, exist_ok=True)
    write_example_losses(out / LOSSES_FILE, losses)
    batches = [{"step": step, "lines": [(step * 3 + k) % 9 for k in range(3)]} for step in range(1, 13)]
    (out / BATCHES_FILE).write_text("".join(json.dumps(b) + "\n" for b in batches))
    for step, loss in enumerate(train_losses, start=1):
        data = {"step": step, "total_steps": len(train_losses), "train_loss": loss}
        session.add(JobEvent(job_id=job.id, type="metrics", message=f"Step {step}", data=data))
    job.status = JobStatus.succeeded
    session.add(job)
    session.commit()
    return out


@pytest.fixture
def launched(session, settings):
    dataset = _dataset(session)
    job = create_job(session, settings, JobRequest(dataset_id=dataset.id, model=TINY, seed=1, accept_warnings=True))
    return dataset, job


def test_a_dataset_snapshot_keeps_the_example_id_of_each_line(session, settings, launched):
    dataset, job = launched
    examples = _examples(session, dataset)
    train = session.get(Snapshot, job.training_snapshot_id)
    valid = session.get(Snapshot, job.validation_snapshot_id)
    assert snapshot_example_ids(settings, train) == [e.id for e in examples if e.split is None]
    assert snapshot_example_ids(settings, valid) == [e.id for e in examples if e.split == "validation"]


def test_the_highest_losses_name_their_examples_and_say_what_changed_since(session, settings, launched):
    dataset, job = launched
    examples = _examples(session, dataset)
    train = [e for e in examples if e.split is None]  # 12 training lines
    losses = [ExampleLoss("train", line, 0.5 + line / 100, 4) for line in range(12)]
    losses[4] = ExampleLoss("train", 4, 3.5, 4)  # the worst
    losses[7] = ExampleLoss("train", 7, 2.5, 4)  # deleted since
    losses[2] = ExampleLoss("train", 2, 2.0, 4)  # edited since
    losses += [ExampleLoss("validation", line, 1.0 + line, 4) for line in range(3)]
    _finish(session, settings, job, losses, [1.0] * 12)
    delete_example(session, train[7].id)
    edited = session.get(Example, train[2].id)
    edited.messages = [{"role": "user", "content": "Say w2"}, {"role": "assistant", "content": "fixed"}]
    session.add(edited)
    session.commit()

    result = job_example_losses(session, settings, job.id, limit=4)
    assert result.state == READY and (result.n_train, result.n_validation) == (12, 3)
    top = [(x.split, x.line) for x in result.highest]
    assert top == [("train", 4), ("validation", 2), ("train", 7), ("train", 2)]
    worst = result.highest[0]
    assert worst.example_id == train[4].id and worst.dataset_id == dataset.id and worst.loss == 3.5
    assert worst.preview == "Say w5 → w5" and not worst.deleted and not worst.changed
    assert result.highest[1].example_id == [e for e in examples if e.split == "validation"][2].id
    assert result.highest[2].deleted and result.highest[2].example_id == train[7].id
    assert result.highest[2].preview == "Say w9 → w9"  # what the job trained on, from its snapshot
    assert result.highest[3].changed and result.highest[3].preview == "Say w2 → w2"
    only_train = job_example_losses(session, settings, job.id, limit=2, split="train")
    assert [x.line for x in only_train.highest] == [4, 7]


def test_a_spike_names_the_examples_of_its_batch(session, settings, launched):
    _, job = launched
    losses = [ExampleLoss("train", line, float(line), 4) for line in range(9)]
    curve = [2.0, 1.6, 1.4, 1.3, 1.25, 1.2, 3.0, 1.15, 1.1, 1.1, 1.05, 1.0]
    _finish(session, settings, job, losses, curve)
    (spike,) = job_example_losses(session, settings, job.id).spikes
    assert spike.step == 7 and spike.loss == 3.0 and spike.batch_size == 3
    assert [x.line for x in spike.examples] == [5, 4, 3]  # step 7's lines (21, 22, 23 mod 9), worst first
    assert all(x.example_id and x.preview for x in spike.examples)


def test_before_the_end_and_without_a_file_the_state_says_why(session, settings, launched):
    _, job = launched
    assert job_example_losses(session, settings, job.id).state == PENDING
    job.status = JobStatus.failed
    session.add(job)
    session.commit()
    assert job_example_losses(session, settings, job.id).state == MISSING
    remote = Job(provider="openai", model="gpt-4o-mini", status=JobStatus.succeeded)
    session.add(remote)
    session.commit()
    assert job_example_losses(session, settings, remote.id).state == UNSUPPORTED


def test_the_preview_is_the_last_question_and_its_answer_on_one_line():
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "second\nline"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "lookup"}}]},
        ]
    }
    assert preview(record) == "second line → calls lookup"
    assert preview({"messages": [{"role": "user", "content": "x" * 500}]}).endswith("…")


def test_the_api_and_the_job_page_card(session, settings, launched, app):
    dataset, job = launched
    train = [e for e in _examples(session, dataset) if e.split is None]
    losses = [ExampleLoss("train", line, 0.1 * line, 4) for line in range(9)]
    _finish(session, settings, job, losses, [2.0, 1.6, 1.4, 1.3, 1.25, 1.2, 3.0, 1.15, 1.1, 1.1, 1.05, 1.0])
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        body = api.get(f"/api/jobs/{job.id}/example_losses", params={"limit": 2}).json()
        assert body["object"] == "job.example_losses" and body["state"] == "ready"
        assert [(x["line"], x["example_id"]) for x in body["highest"]] == [(8, train[8].id), (7, train[7].id)]
        assert body["spikes"][0]["step"] == 7 and body["spikes"][0]["examples"][0]["line"] == 5
        assert api.get(f"/api/jobs/{job.id}/example_losses", params={"split": "test"}).status_code == 422
        assert api.get("/api/jobs/ftjob-nope/example_losses").status_code == 404
        page = api.get(f"/jobs/{job.id}").text
        assert f'hx-get="/jobs/{job.id}/example-losses"' in page
        card = api.get(f"/jobs/{job.id}/example-losses", headers={"HX-Request": "true"}).text
    assert f'href="/examples/{train[8].id}"' in card and "Say w10 → w10" in card
    assert 'id="spike-7"' in card and "hx-trigger" not in card  # the job has ended: no more reloading
    spikes = json.loads(card.split("data-spikes='", 1)[1].split("'", 1)[0])
    assert spikes[0]["step"] == 7 and spikes[0]["title"].startswith("Loss spike at step 7: 3.000")
