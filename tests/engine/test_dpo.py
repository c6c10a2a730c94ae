"""DPO on the tiny model: the loss equals a hand computation, a short job raises the preference, resume works."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.engine import _hf
from app.engine import protocol as p
from app.engine.train import run_training
from tests.engine.conftest import make_spec

SIGN_OFF = " Cheers!"


def preference(i: int) -> dict:
    """One pair where the preferred answer ends with a sign-off and the other does not."""
    answer = f"The number is {i}."
    return {
        "input": {"messages": [{"role": "user", "content": f"say the number {i}"}]},
        "preferred_output": [{"role": "assistant", "content": answer + SIGN_OFF}],
        "non_preferred_output": [{"role": "assistant", "content": answer}],
    }


def dpo_spec(settings, tmp_path: Path, n: int = 12, **hyper) -> dict:
    """A DPO spec for the tiny model."""
    hyperparameters = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1, "lora_rank": 4, **hyper}
    return make_spec(
        settings,
        tmp_path,
        train_records=[preference(i) for i in range(n)],
        valid_records=[preference(100 + i) for i in range(4)],
        hyperparameters=hyperparameters,
        method="dpo",
    )


def _metrics(lines: list[dict]) -> list[dict]:
    return [e["data"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"]


def _run(spec: dict, should_stop=None) -> tuple[str, list[dict]]:
    lines: list[dict] = []
    status = run_training(spec, lambda obj: lines.append(json.loads(json.dumps(obj))), should_stop)
    return status, lines


def test_the_dpo_loss_of_a_tiny_batch_equals_a_hand_computation(tiny_settings, tiny_model_dir):
    _hf.prepare()
    import torch

    from app.engine import cpu_training
    from app.engine.dpo_data import encode_pairs
    from app.engine.dpo_loss import SequenceScorer, dpo_loss, reference_logps
    from app.engine.lora_model import Stepper, load_lora_model
    from app.engine.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    pairs = encode_pairs(tokenizer, [preference(1), preference(22)]).pairs
    model = load_lora_model(tiny_model_dir, 4, "cpu", seed=3)
    with torch.no_grad():  # a non-zero adapter, so the tuned model and the reference differ
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.05)
    packed = cpu_training.prepare(model, None)
    scorer = SequenceScorer(Stepper(model, "cpu", None, packed))
    ref_chosen, ref_rejected = reference_logps(model, scorer, pairs, 1024)
    scored = scorer.score([pairs[0].chosen, pairs[1].chosen, pairs[0].rejected, pairs[1].rejected])
    beta = 0.25
    losses, _, _ = dpo_loss(scored.logps[:2], scored.logps[2:], ref_chosen, ref_rejected, beta)

    def answer_logp(model_call, example) -> float:
        """Sum of log p(answer token | tokens before it), one chat at a time, through the plain forward."""
        ids = torch.tensor([example.input_ids])
        with torch.no_grad():
            logits = model_call(input_ids=ids).logits[0].float()
        logps = torch.log_softmax(logits, dim=-1)
        return sum(
            float(logps[t, example.input_ids[t + 1]])
            for t in range(len(example.input_ids) - 1)
            if example.trained[t + 1]
        )

    base = model.get_base_model()
    for k, pair in enumerate(pairs):
        policy_c, policy_r = answer_logp(model, pair.chosen), answer_logp(model, pair.rejected)
        with model.disable_adapter():
            ref_c, ref_r = answer_logp(base, pair.chosen), answer_logp(base, pair.rejected)
        assert float(ref_chosen[k]) == pytest.approx(ref_c, abs=1e-4)
        assert abs(policy_c - ref_c) > 1e-3  # the adapter does change the answer's probability
        margin = beta * ((policy_c - ref_c) - (policy_r - ref_r))
        expected = math.log1p(math.exp(-margin))  # -log(sigmoid(margin))
        assert float(losses[k].detach()) == pytest.approx(expected, abs=1e-4)
        # only the answer's tokens are scored: the chosen answer holds its sign-off's tokens, no prompt token
        assert 0 < pair.rejected.n_trained < pair.chosen.n_trained < len(pair.chosen.input_ids) // 2


def test_a_short_dpo_job_raises_the_preference_accuracy_and_margin(tiny_settings, tmp_path):
    status, lines = _run(dpo_spec(tiny_settings, tmp_path, n_epochs=4))
    assert status == "succeeded", [line for line in lines if line["kind"] == "error"]
    metrics = _metrics(lines)
    first, last = metrics[0], metrics[-1]
    assert set(first) >= {f"{s}_{k}" for s in ("train", "valid") for k in p.DPO_METRIC_KEYS}
    assert last["train_reward_margin"] > first["train_reward_margin"] and last["train_reward_margin"] > 0
    assert last["train_reward_accuracy"] >= 0.75 and last["train_loss"] < math.log(2)
    assert last["valid_reward_accuracy"] >= 0.75 and last["valid_reward_margin"] > 0  # held-out pairs too
    (hyper,) = [line for line in lines if line["kind"] == "hyperparameters"]
    assert hyper["values"]["beta"] == 0.1 and hyper["values"]["sft_weight"] == 0.0
    assert [line["step"] for line in lines if line["kind"] == "checkpoint"] == [3, 6, 9, 12]
    assert any(line["kind"] == "result" for line in lines)
    # Its speed counts both chats of every pair it stepped over (the model list's measured speed reads it).
    (done,) = [e["data"] for e in lines if e["kind"] == "event" and e["message"].startswith("New fine-tuned model")]
    (started,) = [e["data"] for e in lines if e["kind"] == "event" and e["data"] and "trained_tokens" in e["data"]]
    speed = done["tokens_per_second"]
    assert speed > 0  # seconds are rounded to 0.1 s: allow for that in tokens
    assert speed * done["seconds"] == pytest.approx(4 * started["tokens"], abs=0.06 * speed)


def test_a_dpo_job_resumes_from_its_checkpoint_reporting_each_step_once(tiny_settings, tmp_path):
    spec = dpo_spec(tiny_settings, tmp_path, sft_weight=0.5)
    first_lines: list[dict] = []

    def past_the_checkpoint() -> bool:
        return any(line["kind"] == "checkpoint" for line in first_lines) and any(
            m["step"] > 3 for m in _metrics(first_lines)
        )

    status = run_training(spec, lambda obj: first_lines.append(json.loads(json.dumps(obj))), past_the_checkpoint)
    assert status == "cancelled"
    (checkpoint,) = [line for line in first_lines if line["kind"] == "checkpoint"]
    reported = max(m["step"] for m in _metrics(first_lines))
    resume = {"checkpoint_dir": checkpoint["path"], "step": checkpoint["step"], "reported_step": reported}
    status, second = _run({**spec, "resume_from": resume})
    assert status == "succeeded"
    steps = sorted(m["step"] for m in _metrics(first_lines) + _metrics(second))
    assert steps == list(range(1, 7))  # 12 pairs, batches of 4, 2 epochs: every step reported once
    assert any("Resumed from the checkpoint at step 3" in line.get("message", "") for line in second)


def test_a_dpo_job_on_a_chat_file_fails_with_a_readable_error(tiny_settings, tmp_path):
    spec = make_spec(tiny_settings, tmp_path, method="dpo")
    status, lines = _run(spec)
    assert status == "failed"
    (error,) = [line for line in lines if line["kind"] == "error"]
    assert error["code"] == p.ERROR_INVALID_FILE and "preference" in error["message"]
