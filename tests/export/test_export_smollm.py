"""Acceptance on the real SmolLM2: a 2-step tuned adapter, exported merged and as GGUF, answers as Tuneboard's chat."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine._hf import quiet
from app.engine.catalog import SMOLLM2, resolve_base_model
from app.engine.chat_types import ModelRef
from app.engine.export import export_gguf, export_merged
from app.engine.inference import ChatEngine
from app.engine.train import run_training
from tests.engine.conftest import make_spec
from tests.export.conftest import greedy_chat, greedy_hf

pytestmark = [pytest.mark.smollm, pytest.mark.slow]

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "How many legs does a spider have?",
    "Give me three colours.",
    "What is 12 plus 30?",
]
TRAIN = [
    ("What colour is the sky?", "Blue, on a clear day."),
    ("What do bees make?", "Honey."),
    ("How many days are in a week?", "Seven."),
    ("Which planet do we live on?", "Earth."),
]


@pytest.fixture
def smollm_adapter(settings, tmp_path) -> Path:
    """SmolLM2 tuned for two steps (four examples, batch size two, one epoch)."""
    records = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in TRAIN]
    hyperparameters = {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 4, "lora_rank": 8}
    spec = make_spec(
        settings, tmp_path / "job", train_records=records, base_model=SMOLLM2, hyperparameters=hyperparameters
    )
    lines: list[dict] = []
    assert run_training(spec, lines.append) == "succeeded", lines[-1]
    return Path(next(line for line in lines if line["kind"] == "result")["adapter_path"])


def test_smollm2_merged_and_gguf_exports_answer_as_tuneboard_chat(settings, smollm_adapter, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = ModelRef("ft:smollm2:export", SMOLLM2, adapter_path=smollm_adapter)
    with ChatEngine(settings.model_copy(update={"engine_quantize": False})) as chat:
        ours = greedy_chat(chat, ref, PROMPTS, max_tokens=24)
    merged = export_merged(resolve_base_model(settings, SMOLLM2), smollm_adapter, tmp_path / "merged")
    with quiet():
        model = AutoModelForCausalLM.from_pretrained(merged).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert greedy_hf(model, tokenizer, PROMPTS, max_tokens=24) == ours
    del model
    answers = {}
    for quant in ("f16", "q8_0"):
        path = export_gguf(merged, tmp_path / f"smollm2-{quant}.gguf", quant)
        with quiet():
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        answers[quant] = greedy_hf(model, tokenizer, PROMPTS, max_tokens=24)
        del model
    assert answers["f16"] == ours
    # 8-bit weights may move a near-tie late in a reply; most replies stay the same word for word.
    assert sum(a == b for a, b in zip(answers["q8_0"], ours, strict=True)) >= 3, (answers["q8_0"], ours)
