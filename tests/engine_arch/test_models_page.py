"""The models page says, per local base model, its architecture and which paths train and chat with it."""

from __future__ import annotations

import pytest

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import browser_client, make_settings


@pytest.fixture
def arch_client(tmp_path, tiny_dirs):
    settings = make_settings(tmp_path / "data", local_models={"tiny-gemma": tiny_dirs["gemma2"]})
    upgrade(settings)
    client = browser_client(create_app(settings))
    yield client
    client.__exit__(None, None, None)


def test_the_models_page_says_which_paths_serve_each_base_model(arch_client):
    html = arch_client.get("/models").text
    line = html.split('id="base-model-paths"')[1].split("</p>")[0]
    assert "SmolLM2-135M-Instruct</span> (llama: CPU fast training, CPU fast chat)" in line
    assert "tiny-gemma</span> (gemma2: general training, general chat)" in line
