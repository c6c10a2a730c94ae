"""In-process LoRA training on the tiny model: the protocol lines, checkpoints, determinism, resume, errors."""

from __future__ import annotations

import csv
import functools
import json
import operator
from pathlib import Path

import pytest

from app.engine import protocol as p
from app.engine.data import resolve_hyperparameters
from app.engine.train import run_training
from tests.engine.conftest import chat, make_spec, number_records


def _train(spec):
    lines = []
    status = run_training(spec, lambda obj: lines.append(json.loads(json.dumps(obj))))
    return status, lines


def _kinds(lines, kind):
    return [line for line in lines if line["kind"] == kind]


def _losses(lines):
    return [e["data"]["train_loss"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"]


def test_a_job_reports_openai_style_events_checkpoints_and_a_result(tiny_settings, tmp_path):
    spec = make_spec(tiny_settings, tmp_path, valid_records=number_records(3, offset=5))
    status, lines = _train(spec)
    assert status == "succeeded"
    messages = [e["message"] for e in _kinds(lines, "event") if e["type"] == "message"]
    assert messages[0].startswith("Validating training file")
    assert "Fine-tuning job started" in messages
    assert any(m.startswith("Step 1/6: training loss=") for m in messages)
    assert messages[-2:] == [
        f"New fine-tuned model created: {spec['fine_tuned_model']}",
        "The job has successfully completed",
    ]
    (hyper,) = _kinds(lines, "hyperparameters")
    assert hyper["total_steps"] == 6 and hyper["values"]["batch_size"] == 4
    metrics = [e["data"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"]
    assert set(metrics[0]) == set(p.METRIC_KEYS)
    checkpoints = _kinds(lines, "checkpoint")
    assert [c["step"] for c in checkpoints] == [3, 6]
    assert all(c["metrics"]["valid_loss"] is not None for c in checkpoints)  # full validation at each epoch end
    for c in checkpoints:
        assert (Path(c["path"]) / "adapter_model.safetensors").exists()
    (result,) = _kinds(lines, "result")
    assert (Path(result["adapter_path"]) / "adapter_config.json").exists()
    assert result["trained_tokens"] > 0
    with open(result["result_file"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == p.RESULT_COLUMNS and len(rows) == 1 + len(metrics)


def test_auto_hyperparameters_follow_the_cookbook_epoch_rule():
    assert resolve_hyperparameters({}, 10)["n_epochs"] == 10
    assert resolve_hyperparameters({}, 1)["n_epochs"] == 25
    assert resolve_hyperparameters({}, 500)["n_epochs"] == 3
    assert resolve_hyperparameters({}, 20000)["n_epochs"] == 1
    assert resolve_hyperparameters({"n_epochs": 2, "batch_size": 8}, 500)["batch_size"] == 8


def test_the_same_seed_and_data_give_the_same_losses(tiny_settings, tmp_path):
    _, first = _train(make_spec(tiny_settings, tmp_path / "a"))
    _, second = _train(make_spec(tiny_settings, tmp_path / "b"))
    assert _losses(first) == _losses(second)


def test_loss_moves_only_for_weighted_assistant_tokens(tiny_settings, tmp_path):
    records = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "ignored", "weight": 0},
                {"role": "user", "content": "again"},
                {"role": "assistant", "content": "learned"},
            ]
        }
    ] * 4
    status, lines = _train(make_spec(tiny_settings, tmp_path, train_records=records))
    assert status == "succeeded"
    (counts,) = [e for e in lines if e["kind"] == "event" and e["message"].startswith("Training file has 4 examples")]
    assert "trained" in counts["message"]


def test_resuming_from_a_checkpoint_continues_where_the_first_run_stopped(tiny_settings, tmp_path):
    _, full = _train(make_spec(tiny_settings, tmp_path / "full"))
    first_checkpoint = _kinds(full, "checkpoint")[0]
    resumed_spec = make_spec(
        tiny_settings,
        tmp_path / "resumed",
        resume_from={"checkpoint_dir": first_checkpoint["path"], "step": first_checkpoint["step"]},
    )
    status, resumed = _train(resumed_spec)
    assert status == "succeeded"
    steps = [e["data"]["step"] for e in resumed if e["kind"] == "event" and e["type"] == "metrics"]
    assert steps[0] == first_checkpoint["step"] + 1
    assert _losses(resumed) == pytest.approx(_losses(full)[first_checkpoint["step"] :], rel=1e-4)


def test_a_stop_request_cancels_before_any_final_adapter_exists(tiny_settings, tmp_path):
    spec = make_spec(tiny_settings, tmp_path)
    lines = []

    def emit(obj):
        lines.append(obj)

    status = run_training(spec, emit, should_stop=lambda: any(line["kind"] == "checkpoint" for line in lines))
    assert status == "cancelled"
    assert not (tmp_path / "out" / "adapter").exists()
    assert not _kinds(lines, "result")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\nnot json\n',
            "Line 2",
        ),
        ('{"messages": [{"role": "user", "content": "only a question"}]}\n', "no assistant message"),
        ("", "no examples"),
    ],
)
def test_a_bad_training_file_fails_with_a_readable_error(tiny_settings, tmp_path, content, needle):
    spec = make_spec(tiny_settings, tmp_path)
    Path(spec["train_file"]).write_text(content)
    status, lines = _train(spec)
    assert status == "failed"
    (error,) = _kinds(lines, "error")
    assert error["code"] == p.ERROR_INVALID_FILE and needle in error["message"]


def test_an_unknown_base_model_fails_with_model_not_found(tiny_settings, tmp_path):
    status, lines = _train(make_spec(tiny_settings, tmp_path, base_model="nope"))
    assert status == "failed"
    assert _kinds(lines, "error")[0]["code"] == p.ERROR_MODEL_NOT_FOUND


def test_a_spec_round_trips_through_json(tmp_path):
    spec = p.TrainSpec(
        job_id="j",
        base_model="b",
        fine_tuned_model="ft:b::j",
        train_file="/t",
        output_dir="/o",
        data_dir="/d",
        hyperparameters={"n_epochs": 2},
    )
    again = p.TrainSpec.read(spec.write(tmp_path / "spec.json"))
    assert again.hyperparameters == {
        "n_epochs": 2,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "lora_rank": "auto",
    }
    assert p.parse_line(json.dumps(p.error_line("x", "y"))) == {"kind": "error", "code": "x", "message": "y"}
    assert p.parse_line("Loading weights 50%") is None


def test_records_helper_builds_chats():
    assert chat("a", "b")["messages"][1] == {"role": "assistant", "content": "b"}


def test_right_padded_length_buckets_score_exactly_like_packed_rows(tiny_model_dir):
    import random

    import torch

    from app.engine.data import Example, pack
    from app.engine.lora_model import Stepper, load_lora_model, token_buckets

    rng = random.Random(0)
    examples = []
    for _ in range(9):
        n = rng.randint(5, 40)
        examples.append(Example([rng.randint(3, 300) for _ in range(n)], [False] * (n // 2) + [True] * (n - n // 2)))
    stepper = Stepper(load_lora_model(tiny_model_dir, 4, "cpu", 1), "cpu", None)
    buckets = token_buckets(examples, 100)
    assert sorted(map(id, functools.reduce(operator.iadd, buckets, []))) == sorted(map(id, examples))
    assert all(len(b) * max(len(e.input_ids) for e in b) <= 100 or len(b) == 1 for b in buckets)
    with torch.no_grad():
        packed = [stepper.row_loss(*row) for row in pack(examples, 4096)]
        padded = [stepper.batch_loss(bucket) for bucket in buckets]
    assert sum(float(p[0]) for p in padded) == pytest.approx(sum(float(p[0]) for p in packed), rel=1e-5)
    assert sum(int(p[1]) for p in padded) == sum(p[2] for p in packed)
