"""Eval fixtures: settings with the tiny local model registered, a dataset with a validation split, an eval on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from app.engine.inference import ChatEngine
from app.evals.evals import create_eval
from app.tables import Dataset, Eval
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model

STRING_CHECK = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference}}",
    "operation": "eq",
}


@pytest.fixture
def dataset(session: Session) -> Dataset:
    """Twelve unsplit arithmetic examples and four in the validation split."""
    return make_dataset(session, n_train=12, n_validation=4)


@pytest.fixture
def an_eval(session: Session, settings, dataset: Dataset) -> Eval:
    """An eval over the dataset's validation split with one exact-match grader."""
    return create_eval(session, settings, name="arith", testing_criteria=[STRING_CHECK], dataset_id=dataset.id)


__all__ = ["TINY", "settings", "tiny_model"]


@pytest.fixture
def chat_engine(settings) -> Iterator[ChatEngine]:
    """A chat engine of its own on the tiny-model settings, closed after the test."""
    with ChatEngine(settings) as engine:
        yield engine


def short(max_tokens: int = 6) -> dict:
    """A run data source over the eval's own items with short greedy answers."""
    return {"type": "completions", "sampling_params": {"max_completion_tokens": max_tokens}}


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model, tmp_path_factory) -> Path:
    """A LoRA adapter of the tiny model (random, with an effect), saved as a trainer saves a checkpoint."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from app.engine._hf import quiet

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    torch.manual_seed(5)
    with quiet():
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)  # a fresh adapter's B is zero: give it an effect
    out = tmp_path_factory.mktemp("adapter")
    with quiet():
        model.save_pretrained(out)
    return out
