"""Each example's final loss (issue #21): the engine's pass equals a direct forward of each example alone, every
step's batch is recorded, and a resume keeps what its checkpoint had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine import _hf
from app.engine.loss_records import (
    BATCHES_FILE,
    LOSSES_FILE,
    BatchLog,
    ExampleLoss,
    read_batches,
    read_example_losses,
    write_example_losses,
)
from app.engine.train import run_training
from tests.engine.conftest import TINY, chat, make_spec, number_records


def _records() -> list[dict]:
    """Chats of different lengths (so packed rows hold examples of several sizes), one with two answers."""
    records = number_records(9)
    records.append(chat("say something longer, please, with several words in it", "the quick brown fox " * 6))
    records.append(
        {
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "one"},
                {"role": "user", "content": "second"},
                {"role": "assistant", "content": "two two"},
            ]
        }
    )
    return records


def _direct_losses(model_dir: Path, adapter: Path, records: list[dict]) -> list[tuple[float, int]]:
    """(mean loss per trained token, trained tokens) of each record, from PEFT's own float32 forward, one at a time."""
    _hf.prepare()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from app.engine.tokenizer import encode_chat, load_tokenizer
    from app.engine.tool_format import record_tools

    tokenizer = load_tokenizer(model_dir)
    with _hf.quiet():
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(adapter)).eval()
    out = []
    with torch.no_grad():
        for record in records:
            encoded = encode_chat(tokenizer, record["messages"], record_tools(record))
            ids = torch.tensor([encoded.input_ids])
            logits = model(input_ids=ids).logits[0, :-1].float()
            targets = ids[0, 1:]
            trained = torch.tensor(encoded.trained[1:])
            losses = torch.nn.functional.cross_entropy(logits[trained], targets[trained], reduction="none")
            out.append((float(losses.mean()), int(trained.sum())))
    return out


def _train(spec) -> list[dict]:
    lines: list[dict] = []
    assert run_training(spec, lines.append) == "succeeded"
    return lines


@pytest.fixture
def float32_training(monkeypatch):
    """Training in float32 throughout (no bf16 autocast even where the CPU has it), so sums compare exactly."""
    _hf.prepare()
    from app.engine import training_run

    monkeypatch.setattr(training_run, "autocast_dtype", lambda device: None)


def test_each_examples_final_loss_equals_a_direct_forward_of_it_alone(tiny_settings, tmp_path, float32_training):
    train, valid = _records(), number_records(3, offset=5)
    spec = make_spec(tiny_settings, tmp_path, train_records=train, valid_records=valid)
    spec["hyperparameters"]["learning_rate_multiplier"] = 20  # adapters that clearly moved away from zero
    lines = _train(spec)
    out = Path(spec["output_dir"])
    recorded = read_example_losses(out / LOSSES_FILE)
    assert [(x.split, x.line) for x in recorded] == [("train", i) for i in range(len(train))] + [
        ("validation", i) for i in range(len(valid))
    ]
    model_dir = tiny_settings.local_models[TINY]
    expected = _direct_losses(model_dir, out / "adapter", train) + _direct_losses(model_dir, out / "adapter", valid)
    for got, (loss, tokens) in zip(recorded, expected, strict=True):
        assert got.tokens == tokens
        assert got.loss == pytest.approx(loss, rel=1e-4), got
    # The adapters learnt something: the answers' losses differ from one another, and each example has its own.
    assert len({round(x.loss, 3) for x in recorded}) > len(recorded) // 2
    announced = [e for e in lines if e["kind"] == "event" and (e.get("data") or {}).get("example_losses")]
    assert len(announced) == 1
    assert announced[0]["data"]["example_losses"] == {"file": LOSSES_FILE, "train": len(train), "validation": 3}
    assert announced[0]["message"].startswith(f"Recorded the final loss of {len(train)} training and 3 validation")


def test_the_default_path_agrees_with_a_direct_forward_within_bf16_rounding(tiny_settings, tmp_path):
    train = _records()
    spec = make_spec(tiny_settings, tmp_path, train_records=train)
    _train(spec)
    out = Path(spec["output_dir"])
    recorded = read_example_losses(out / LOSSES_FILE)
    expected = _direct_losses(tiny_settings.local_models[TINY], out / "adapter", train)
    for got, (loss, tokens) in zip(recorded, expected, strict=True):
        assert got.tokens == tokens and got.loss == pytest.approx(loss, rel=3e-2)


def test_padded_buckets_and_packed_rows_give_each_example_the_same_loss(tiny_model_dir):
    _hf.prepare()
    from app.engine.data import encode_dataset
    from app.engine.example_losses import example_loss_sums
    from app.engine.lora_model import Stepper, load_lora_model
    from app.engine.tokenizer import load_tokenizer

    examples = encode_dataset(load_tokenizer(tiny_model_dir), _records()).examples
    stepper = Stepper(load_lora_model(tiny_model_dir, 4, "cpu", 3), "cpu", None)
    packed = example_loss_sums(stepper, examples, 64)  # several rows of several examples each
    padded = example_loss_sums(stepper, examples, 64, padded=True)
    alone = [example_loss_sums(stepper, [e], 4096)[0] for e in examples]
    assert padded == pytest.approx(packed, rel=1e-5) and alone == pytest.approx(packed, rel=1e-5)
    assert stepper.model.training  # left as it was found


def test_every_step_records_its_training_lines(tiny_settings, tmp_path):
    train = number_records(10)
    spec = make_spec(tiny_settings, tmp_path, train_records=train)
    _train(spec)
    batches = read_batches(Path(spec["output_dir"]) / BATCHES_FILE)
    assert sorted(batches) == [1, 2, 3, 4, 5, 6]  # 2 epochs of ceil(10 / 4) steps
    for epoch in (0, 1):
        lines = sorted(x for step in range(1 + 3 * epoch, 4 + 3 * epoch) for x in batches[step])
        assert lines == list(range(10))  # each epoch sees every line once


def test_a_resumed_batch_log_keeps_its_checkpoints_steps_and_readers_take_the_last_record(tmp_path):
    log = BatchLog(tmp_path)
    for step in (1, 2, 3):
        log.record(step, [step, step + 10])
    with (tmp_path / BATCHES_FILE).open("a") as handle:
        handle.write('{"step": 4, "li')  # a killed writer's torn line
    resumed = BatchLog(tmp_path, resumed_step=2)
    assert read_batches(resumed.path) == {1: [1, 11], 2: [2, 12]}
    resumed.record(3, [7])
    resumed.record(3, [8])
    assert read_batches(resumed.path)[3] == [8]
    assert read_batches(BatchLog(tmp_path).path) == {}  # a fresh run starts an empty log


def test_example_losses_round_trip_and_bad_lines_are_skipped(tmp_path):
    items = [ExampleLoss("train", 0, 1.5, 3), ExampleLoss("validation", 2, 0.25, 4)]
    path = write_example_losses(tmp_path / LOSSES_FILE, items)
    with path.open("a") as handle:
        handle.write(json.dumps({"split": "train"}) + "\nnot json\n")
    assert read_example_losses(path) == items
    assert read_example_losses(tmp_path / "missing.jsonl") == []


def test_a_resumed_job_records_each_step_once_and_its_losses_at_its_end(tiny_settings, tmp_path):
    spec = make_spec(tiny_settings, tmp_path, hyperparameters={"n_epochs": 2, "batch_size": 2, "lora_rank": 4})
    first: list[dict] = []

    def past_the_checkpoint() -> bool:
        checkpoints = [line["step"] for line in first if line["kind"] == "checkpoint"]
        steps = [e["data"]["step"] for e in first if e["kind"] == "event" and e["type"] == "metrics"]
        return bool(checkpoints) and any(s > checkpoints[0] + 1 for s in steps)

    assert run_training(spec, first.append, past_the_checkpoint) == "cancelled"
    out = Path(spec["output_dir"])
    assert not (out / LOSSES_FILE).exists()  # measured after the last step only
    (checkpoint,) = [line for line in first if line["kind"] == "checkpoint"]
    resume = {"checkpoint_dir": checkpoint["path"], "step": checkpoint["step"], "reported_step": checkpoint["step"]}
    assert run_training({**spec, "resume_from": resume}, lambda obj: None) == "succeeded"
    raw = [json.loads(line)["step"] for line in (out / BATCHES_FILE).read_text().splitlines()]
    assert raw == list(range(1, 13))  # the steps past the checkpoint were trained again and recorded once
    assert len(read_example_losses(out / LOSSES_FILE)) == 12
