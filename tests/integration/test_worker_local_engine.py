"""The embedded worker trains with the real local engine (tiny random Llama) and the result can be chatted with."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from app.engine.chat_types import ChatParams
from app.playground.chat import stream_chat
from tests.support.tiny_jobs import tiny_model, tiny_worker  # noqa: F401

pytestmark = pytest.mark.slow


def test_the_embedded_worker_tunes_the_tiny_model_and_its_model_and_checkpoints_chat(tiny_worker):
    settings, app, api = tiny_worker.settings, tiny_worker.app, tiny_worker.api
    dataset = tiny_worker.dataset(n_train=12, n_validation=2)
    body = {"dataset_id": dataset.id, "suffix": "tiny", "seed": 1, "hyperparameters": {"n_epochs": 2, "batch_size": 4}}
    job = tiny_worker.launch(**body)
    done = tiny_worker.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["trained_tokens"] > 0 and done["hyperparameters"]["n_epochs"] == 2
    assert done["result_files"] and (settings.data_dir / done["result_files"][0]).exists()
    checkpoints = api.get(f"/api/jobs/{job['id']}/checkpoints").json()["data"]
    assert len(checkpoints) == 2
    messages = [e["message"] for e in api.get(f"/api/jobs/{job['id']}/events").json()["data"]]
    assert messages.count("The job has successfully completed") == 1
    with Session(app.state.engine) as session:
        for model in (done["fine_tuned_model"], checkpoints[-1]["fine_tuned_model_checkpoint"]):
            chunks = list(
                stream_chat(
                    session,
                    settings,
                    app.state.chat_engine,
                    model,
                    [{"role": "user", "content": "hi"}],
                    ChatParams(max_tokens=5, temperature=0),
                )
            )
            assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].usage["prompt_tokens"] > 0
