"""An added model is a base model like any other: a job trains on a downloaded one; a GGUF file is converted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.basemodels.service import add_from_gguf
from app.engine.catalog import gguf_file, list_base_models, resolve_base_model
from app.main import create_app
from app.tables.migrate import upgrade
from tests.basemodels.conftest import REPO
from tests.conftest import API_KEY, make_settings
from tests.support.builders import make_dataset
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def test_a_model_downloaded_from_the_hub_can_be_fine_tuned(tmp_path, hub):
    settings = make_settings(
        tmp_path / "data",
        hf_endpoint=hub.url,
        hf_hub_offline=False,
        embedded_worker=True,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.05,
    )
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        api.post("/api/base-models", json={"source": {"kind": "hf", "repo": REPO}})
        wait_for(lambda: api.get("/api/base-models/downloads/tiny-llama").json()["status"] == "done", 60)
        with Session(app.state.engine, expire_on_commit=False) as session:
            dataset = make_dataset(session, n_train=10, n_validation=0)
        job = api.post(
            "/api/jobs",
            json={"dataset_id": dataset.id, "model": "tiny-llama", "seed": 1, "hyperparameters": {"n_epochs": 1}},
        )
        assert job.status_code in (200, 201), job.text
        done = wait_for(
            lambda: (j := api.get(f"/api/jobs/{job.json()['id']}").json())["status"] in ("succeeded", "failed") and j,
            240,
            "the job to end",
        )
        assert done["status"] == "succeeded", done["error"]
        assert done["model"] == "tiny-llama"


def test_the_smollm2_gguf_added_as_a_file_is_converted_once_into_a_hugging_face_directory(settings):
    manifest = add_from_gguf(settings, str(gguf_file()), "smol-from-file")
    assert manifest.facts.architecture == "llama" and manifest.facts.context_length
    path = resolve_base_model(settings, "smol-from-file")
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    listed = next(m for m in list_base_models(settings) if m.name == "smol-from-file")
    assert listed.cached and listed.path == path
    assert resolve_base_model(settings, "smol-from-file") == path
