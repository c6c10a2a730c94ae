"""Acceptance: DPO on SmolLM2 with default settings teaches a property that only the preferred answers have (a
closing sign-off), so the tuned model shows it on held-out prompts where the base model never does."""

from __future__ import annotations

import pytest

from app.engine.catalog import SMOLLM2
from app.engine.chat_types import ChatParams, ModelRef
from app.engine.inference import ChatEngine
from app.engine.train import run_training
from tests.engine.conftest import make_spec
from tests.engine.test_smollm_acceptance import FACTS, HELD_OUT

pytestmark = [pytest.mark.smollm, pytest.mark.slow]

SIGN_OFF = "Cheers!"


def _pair(question: str, answer: str) -> dict:
    plain = f"{answer[0].upper()}{answer[1:]}."
    return {
        "input": {"messages": [{"role": "user", "content": question}]},
        "preferred_output": [{"role": "assistant", "content": f"{plain} {SIGN_OFF}"}],
        "non_preferred_output": [{"role": "assistant", "content": plain}],
    }


def _answers(chat_engine: ChatEngine, ref: ModelRef) -> list[str]:
    params = ChatParams(temperature=0, max_tokens=60)
    return [
        "".join(c.text for c in chat_engine.stream_chat(ref, [{"role": "user", "content": q}], params))
        for q in HELD_OUT
    ]


def test_dpo_with_default_settings_teaches_smollm2_the_preferred_answers_sign_off(settings, tmp_path):
    with ChatEngine(settings) as chat_engine:
        base = ModelRef(SMOLLM2, SMOLLM2)
        before = sum(SIGN_OFF in text for text in _answers(chat_engine, base))
        spec = make_spec(
            settings,
            tmp_path,
            train_records=[_pair(q, a) for q, a in FACTS],
            base_model=SMOLLM2,
            hyperparameters=dict.fromkeys(("n_epochs", "batch_size", "learning_rate_multiplier", "lora_rank"), "auto"),
            seed=None,
            local_models={},
            method="dpo",
        )
        lines: list[dict] = []
        assert run_training(spec, lines.append) == "succeeded", lines[-1]
        metrics = [line["data"] for line in lines if line["kind"] == "event" and line["type"] == "metrics"]
        assert metrics[-1]["train_reward_accuracy"] > 0.9 and metrics[-1]["train_reward_margin"] > 1
        adapter = next(line for line in lines if line["kind"] == "result")["adapter_path"]
        tuned = _answers(chat_engine, ModelRef("ft:smollm2:dpo", SMOLLM2, adapter))
    after = sum(SIGN_OFF in text for text in tuned)
    assert before == 0 and after >= len(HELD_OUT) * 2 // 3 + 1, tuned
