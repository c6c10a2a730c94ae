"""A run stopped past its checkpoint and resumed reports every step once, in its events and its result.csv."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from app.engine.train import run_training
from tests.engine.conftest import make_spec


def _metrics(lines: list[dict]) -> list[dict]:
    return [e["data"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"]


def _step_messages(lines: list[dict]) -> list[int]:
    return [
        int(e["message"].split()[1].split("/")[0])
        for e in lines
        if e["kind"] == "event" and e["type"] == "message" and e["message"].startswith("Step ")
    ]


def _csv_steps(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        return [int(row[0]) for row in list(csv.reader(handle))[1:]]


def test_a_run_stopped_past_its_checkpoint_resumes_without_reporting_a_step_twice(tiny_settings, tmp_path):
    spec = make_spec(tiny_settings, tmp_path, hyperparameters={"n_epochs": 2, "batch_size": 2, "lora_rank": 4})
    first: list[dict] = []

    def past_the_checkpoint() -> bool:
        checkpoints = [line["step"] for line in first if line["kind"] == "checkpoint"]
        return bool(checkpoints) and any(m["step"] > checkpoints[0] + 1 for m in _metrics(first))

    status = run_training(spec, lambda obj: first.append(json.loads(json.dumps(obj))), past_the_checkpoint)
    assert status == "cancelled"
    (checkpoint,) = [line for line in first if line["kind"] == "checkpoint"]
    reported = max(m["step"] for m in _metrics(first))
    assert reported == checkpoint["step"] + 2  # two steps past the checkpoint, to be trained again
    result_file = Path(spec["output_dir"]) / "result.csv"
    assert _csv_steps(result_file) == list(range(1, reported + 1))

    resume = {"checkpoint_dir": checkpoint["path"], "step": checkpoint["step"], "reported_step": reported}
    second: list[dict] = []
    status = run_training({**spec, "resume_from": resume}, lambda obj: second.append(json.loads(json.dumps(obj))))
    assert status == "succeeded"

    every_step = list(range(1, 12 + 1))  # 12 examples, batches of 2, 2 epochs
    steps = [m["step"] for m in _metrics(first) + _metrics(second)]
    assert {s: n for s, n in Counter(steps).items() if n > 1} == {} and sorted(steps) == every_step
    assert sorted(_step_messages(first) + _step_messages(second)) == every_step
    assert _csv_steps(result_file) == every_step
    assert [line["step"] for line in second if line["kind"] == "checkpoint"] == [12]
