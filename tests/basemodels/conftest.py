"""A stand-in Hugging Face Hub serving the tiny model as `tiny-org/tiny-llama`, and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.tables.migrate import upgrade
from tests.conftest import make_settings
from tests.support.fake_hub import FakeHub, HubServer

REPO = "tiny-org/tiny-llama"
CARD = b"---\nlicense: apache-2.0\nlanguage: en\n---\n# Tiny Llama\nA random test model.\n"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny random Llama as a Hugging Face directory (built once per test session)."""
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("hub-tiny") / "tiny-llama")


@pytest.fixture
def hub(tiny_dir: Path) -> Iterator[FakeHub]:
    """The stand-in hub on a free loopback port, serving the tiny model with a model card."""
    fake = FakeHub()
    fake.add_repo(REPO, tiny_dir, extra={"README.md": CARD})
    with HubServer(fake) as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, hub: FakeHub) -> Settings:
    """Settings on a fresh database whose Hugging Face endpoint is the stand-in hub."""
    # Explicitly online: the engine's _hf.prepare() (build_tiny_model ran it) puts HF_HUB_OFFLINE=1 into this
    # process's environment, which Settings would otherwise read.
    s = make_settings(tmp_path / "data", hf_endpoint=hub.url, hf_hub_offline=False)
    upgrade(s)
    return s
