"""After a real (tiny-model) job, the launch estimate's tokens agree with what the engine trained (issue #17)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, make_settings
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, tiny_model  # noqa: F401
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def test_estimated_tokens_of_a_finished_job_are_within_15_percent_of_its_trained_tokens(tmp_path, tiny_model):
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
        # Explicit epochs: the estimate must follow them, not the default for 12 examples.
        job = api.post(
            "/api/jobs",
            json={"dataset_id": dataset.id, "seed": 1, "hyperparameters": {"n_epochs": 2, "batch_size": 4}},
        ).json()
        done = wait_for(
            lambda: (
                (j := api.get(f"/api/jobs/{job['id']}").json())["status"] in ("succeeded", "failed", "cancelled") and j
            ),
            240,
            "the job to end",
        )
    assert done["status"] == "succeeded", done["error"]
    estimate = done["estimate"]
    assert estimate["n_epochs"] == 2 and estimate["n_steps"] == 6
    assert done["trained_tokens"] == pytest.approx(estimate["charged_tokens"], rel=0.15)
