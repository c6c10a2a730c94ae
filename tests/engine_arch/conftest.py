"""Tiny random models of every architecture the local engine knows, built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.inference import ChatEngine
from app.engine.testing import ARCHITECTURES, build_tiny_model
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Each architecture's tiny model directory, by architecture (about a second each)."""
    root = tmp_path_factory.mktemp("arch-models")
    return {architecture: build_tiny_model(root / architecture, architecture) for architecture in ARCHITECTURES}


@pytest.fixture
def arch_settings(tmp_path: Path, tiny_dirs):
    """Settings registering every tiny model under its architecture's name."""
    return make_settings(tmp_path / "data", local_models=tiny_dirs)


@pytest.fixture
def engine(arch_settings) -> Iterator[ChatEngine]:
    """A chat engine of its own, closed after the test."""
    with ChatEngine(arch_settings) as chat_engine:
        yield chat_engine
