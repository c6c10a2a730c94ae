"""Fixtures for job tests: settings whose default base model is the tiny random Llama (fast token counts).

Import them into a test module: `from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.tables.migrate import upgrade
from tests.conftest import make_settings

TINY = "tiny-llama"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama directory, built once per test session."""
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def settings(tmp_path: Path, tiny_model: Path) -> Settings:
    """Migrated test settings with the tiny model registered and preselected."""
    s = make_settings(
        tmp_path / "data",
        local_models={TINY: tiny_model},
        default_base_model=TINY,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.05,
    )
    upgrade(s)
    return s
