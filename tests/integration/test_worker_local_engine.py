"""The embedded worker trains with the real local engine (tiny random Llama) and the result can be chatted with."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.engine.chat_types import ChatParams
from app.main import create_app
from app.playground.chat import stream_chat
from tests.conftest import API_KEY, make_settings
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, tiny_model  # noqa: F401
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def test_the_embedded_worker_tunes_the_tiny_model_and_its_model_and_checkpoints_chat(tmp_path, tiny_model):
    from app.tables.migrate import upgrade

    settings = make_settings(
        tmp_path / "data",
        embedded_worker=True,
        local_models={TINY: tiny_model},
        default_base_model=TINY,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.05,
    )
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        with Session(app.state.engine, expire_on_commit=False) as session:
            dataset = make_dataset(session, n_train=12, n_validation=2)
        job = api.post(
            "/api/jobs",
            json={
                "dataset_id": dataset.id,
                "suffix": "tiny",
                "seed": 1,
                "hyperparameters": {"n_epochs": 2, "batch_size": 4},
            },
        ).json()
        done = wait_for(
            lambda: (
                (j := api.get(f"/api/jobs/{job['id']}").json())["status"] in ("succeeded", "failed", "cancelled") and j
            ),
            240,
            "the job to end",
        )
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
