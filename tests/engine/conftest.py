"""Engine fixtures: one tiny random Llama per test session, and settings that register it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.inference import ChatEngine
from app.engine.testing import build_tiny_model
from tests.conftest import make_settings

TINY = "tiny-llama"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with a ChatML template, built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / TINY)


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_model_dir: Path):
    """Settings with a private data dir and the tiny model registered (the engine needs no database)."""
    return make_settings(tmp_path / "data", local_models={TINY: tiny_model_dir})


@pytest.fixture
def tiny_chat(tiny_settings) -> Iterator[ChatEngine]:
    """A chat engine of its own (no model loaded yet) on the tiny-model settings, closed after the test."""
    with ChatEngine(tiny_settings) as engine:
        yield engine


def chat(user: str, answer: str, **extra) -> dict:
    """One training record."""
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer, **extra}]}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write records as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def number_records(n: int, offset: int = 0) -> list[dict]:
    """Small arithmetic chats answered as a JSON object."""
    return [chat(f"add {i} and {i + offset}", json.dumps({"answer": 2 * i + offset})) for i in range(n)]


def make_spec(settings, tmp_path: Path, *, train_records=None, valid_records=None, **overrides) -> dict:
    """A SPEC dict for the tiny model with small fixed hyperparameters."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    train = write_jsonl(tmp_path / "train.jsonl", train_records or number_records(12))
    valid = write_jsonl(tmp_path / "valid.jsonl", valid_records) if valid_records else None
    spec = {
        "job_id": "ftjob-test",
        "base_model": TINY,
        "fine_tuned_model": f"ft:{TINY}:test:ftjob-test",
        "train_file": str(train),
        "validation_file": str(valid) if valid else None,
        "output_dir": str(tmp_path / "out"),
        "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1, "lora_rank": 4},
        "seed": 7,
        "resume_from": None,
        "data_dir": str(settings.data_dir),
        "local_models": {k: str(v) for k, v in settings.local_models.items()},
        "device": "cpu",
    }
    spec.update(overrides)
    return spec
