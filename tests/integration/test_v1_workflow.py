"""The original OpenAI fine-tuning script runs unchanged against Tuneboard: only base_url and api_key differ."""

from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_v1_api import example, jsonl, upload

TERMINAL = {"succeeded", "failed", "cancelled"}


def wait_for_job(client: OpenAI, job_id: str, timeout: float):
    """Poll the job (as OpenAI scripts do) until it ends, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in TERMINAL:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job.status} after {timeout}s")
        time.sleep(0.25)


def run_workflow(client: OpenAI, model: str, n_train: int, timeout: float, hyperparameters: dict) -> str:
    """files → job → list → retrieve → events → succeeded → checkpoints → chat (whole, streamed) → delete."""
    train = upload(client, "train.jsonl", jsonl([example(i) for i in range(n_train)]))
    valid = upload(client, "valid.jsonl", jsonl([example(i) for i in range(100, 104)]))
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=train.id,
        validation_file=valid.id,
        suffix="workflow",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
    )
    assert job.status in ("validating_files", "queued", "running")
    assert (job.training_file, job.validation_file, job.model) == (train.id, valid.id, model)
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(limit=10).data]
    assert client.fine_tuning.jobs.retrieve(job.id).id == job.id
    early = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=10)
    assert early.data and all(e.object == "fine_tuning.job.event" for e in early.data)

    done = wait_for_job(client, job.id, timeout)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model and done.finished_at and done.error is None
    events = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=10).data
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    all_events = [e.id for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100)]
    paged = [e.id for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=3)]
    assert paged == all_events and len(paged) > 3  # auto-pagination walks every page once, then stops
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and all(c.fine_tuning_job_id == job.id for c in checkpoints)
    assert client.fine_tuning.jobs.checkpoints.list(job.id, after="ftckpt-unknown").data == []
    assert done.fine_tuned_model in [m.id for m in client.models.list()]

    messages = [
        {"role": "system", "content": "You answer with the number only."},
        {"role": "user", "content": "What is 3 plus one?"},
    ]
    completion = client.chat.completions.create(model=done.fine_tuned_model, messages=messages, max_tokens=8, seed=3)
    assert completion.model == done.fine_tuned_model and completion.usage.completion_tokens <= 8
    streamed = client.chat.completions.create(
        model=done.fine_tuned_model, messages=messages, max_tokens=8, seed=3, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
    assert "".join(pieces) == completion.choices[0].message.content  # same seed, same reply
    deleted = client.models.delete(done.fine_tuned_model)
    assert (deleted.id, deleted.deleted) == (done.fine_tuned_model, True)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=done.fine_tuned_model, messages=messages, max_tokens=2)
    return train.id


@pytest.fixture
def tiny_server(tmp_path):
    from app.engine.testing import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny-llama")
    # maintenance: the workflow cancels a job and deletes its model, which the maintenance switch must allow.
    settings = make_settings(
        tmp_path / "data",
        embedded_worker=True,
        worker_poll_seconds=0.1,
        local_models={"tiny-llama": tiny},
        maintenance=True,
    )
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as server:
        yield server


@pytest.mark.slow
def test_original_openai_workflow_runs_unchanged_on_the_tiny_model(tiny_server):
    with OpenAI(base_url=tiny_server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
        train_id = run_workflow(client, "tiny-llama", 12, 120, {"n_epochs": 1, "batch_size": 4})

        second = client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=train_id, hyperparameters={"n_epochs": 3}
        )
        assert client.fine_tuning.jobs.cancel(second.id).id == second.id
        assert wait_for_job(client, second.id, 60).status == "cancelled"

        few = upload(client, "few.jsonl", jsonl([example(i) for i in range(5)]))
        failed = wait_for_job(client, client.fine_tuning.jobs.create(model="tiny-llama", training_file=few.id).id, 30)
        assert failed.status == "failed" and failed.error.code == "invalid_n_examples"

        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.jobs.retrieve("ftjob-missing")
