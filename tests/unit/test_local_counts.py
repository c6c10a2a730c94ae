"""Local token counts: the fast per-shape plan agrees with the engine's exact encoding (issue #17)."""

from __future__ import annotations

import json

import pytest

from app.config import Settings
from app.datasets.validation.modeltable import resolve_model
from app.datasets.validation.tokens import count_local, count_many
from app.engine.catalog import SMOLLM2
from app.engine.chat_tokens import chat_tokenizer
from app.engine.data import encode_dataset
from app.engine.testing import build_tiny_model
from tests.conftest import FIXTURES, SHARED

DATASETS = (
    "pirate_training_set.jsonl",
    "toy_chat_fine_tuning.jsonl",
    "weighted_multiturn_marv.jsonl",
    "daneel_shop_tools_validation_set.jsonl",
)


def records(name: str) -> list[dict]:
    path = FIXTURES / name if (FIXTURES / name).exists() else SHARED / "datasets" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("counts")
    return Settings(data_dir=root / "data", local_models={"tiny": build_tiny_model(root / "tiny")})


@pytest.mark.parametrize("name", DATASETS)
def test_fast_local_counts_match_the_exact_count_of_each_example_within_one_percent(settings, name):
    rows = records(name)
    fast = count_many(rows, resolve_model("tiny", settings), settings)
    exact = [count_local(settings, "tiny", r) for r in rows]
    assert all(c.exact for c in fast)
    for field in ("total", "assistant", "trained"):
        got, want = sum(getattr(c, field) for c in fast), sum(getattr(c, field) for c in exact)
        assert got == pytest.approx(want, rel=0.01), field


def test_smollm2_is_counted_with_its_own_template_before_its_weights_are_converted(settings):
    rows = records("pirate_training_set.jsonl")
    counts = count_many(rows, resolve_model(SMOLLM2, settings), settings)
    assert all(c.exact for c in counts)
    assert not (settings.data_dir / "models" / SMOLLM2).exists()
    # What the engine trains on: the chat template adds SmolLM2's default system prompt, which o200k's
    # 3-tokens-per-message rule missed (the report said 588 where the job trained 931 per epoch).
    trained = encode_dataset(chat_tokenizer(settings, SMOLLM2), rows).total_tokens
    assert sum(c.total for c in counts) == pytest.approx(trained, rel=0.01)


def test_a_shape_met_again_reuses_its_measured_overhead(settings):
    one = {"messages": [{"role": "user", "content": "Ahoy"}, {"role": "assistant", "content": "Arr, matey!"}]}
    other = {
        "messages": [{"role": "user", "content": "Where be the gold?"}, {"role": "assistant", "content": "Buried."}]
    }
    fast = count_many([one, other], resolve_model("tiny", settings), settings)
    assert [c.total for c in fast] == [count_local(settings, "tiny", r).total for r in (one, other)]
