"""The OpenAI workflow once on the real SmolLM2-135M-Instruct: a tiny dataset, one epoch, then chat with it."""

from __future__ import annotations

import pytest
from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_v1_workflow import run_workflow


@pytest.mark.slow
@pytest.mark.smollm
def test_original_openai_workflow_trains_and_chats_with_real_smollm2(tmp_path):
    # maintenance: the workflow ends by deleting its model, which the maintenance switch must allow.
    settings = make_settings(tmp_path / "data", embedded_worker=True, worker_poll_seconds=0.1, maintenance=True)
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as server:
        with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            run_workflow(client, "SmolLM2-135M-Instruct", 10, 300, {"n_epochs": 1, "batch_size": 10})
