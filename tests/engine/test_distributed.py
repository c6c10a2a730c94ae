"""Data-parallel training on this CPU: two gloo ranks train the same global batches as one process.

The per-step losses (and validation losses, and the final adapter) match one process within floating-point
tolerance, a resume from a checkpoint goes on as one process would, and SIGTERM stops every rank.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from app.engine import protocol as p
from app.engine.train import run_training
from app.providers.local import ROOT
from app.providers.local_ranks import Layout, TrainerGroup, child_environ
from tests.engine.conftest import make_spec, number_records

pytestmark = pytest.mark.slow

HYPER = {"n_epochs": 2, "batch_size": 6, "learning_rate_multiplier": 1, "lora_rank": 4}
COMMAND = [sys.executable, "-m", "app.engine.train_main"]


def _spec(settings, tmp_path: Path, **overrides) -> Path:
    values = {"train_records": number_records(12), "valid_records": number_records(5, 3), "hyperparameters": HYPER}
    spec = make_spec(settings, tmp_path, **{**values, **overrides})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _two_ranks(spec_path: Path, timeout: float = 240) -> tuple[list[dict], list[int]]:
    """Run two gloo ranks to the end: rank 0's protocol lines and every rank's exit code."""
    out = spec_path.parent
    group = TrainerGroup.start(COMMAND, spec_path, out, child_environ(ROOT), Layout("cpu", 2), ROOT)
    try:
        assert group.lead.stdout is not None
        lines = [line for raw in group.lead.stdout if (line := p.parse_line(raw)) is not None]
        group.wait(timeout=timeout)
        return lines, [process.returncode for process in group.processes]
    finally:
        group.close()


def _metrics(lines: list[dict]) -> dict[int, dict]:
    return {e["data"]["step"]: e["data"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"}


def assert_same_adapter(lines: list[dict], one_process_adapter: Path) -> None:
    """The adapter of the run's result is the one process's, within 2 % in norm per LoRA part (Adam's update of a
    near-zero gradient may differ by one step)."""
    (result,) = [line for line in lines if line["kind"] == "result"]
    ours = load_file(str(Path(result["adapter_path"]) / "adapter_model.safetensors"))
    theirs = load_file(str(one_process_adapter / "adapter_model.safetensors"))
    assert ours.keys() == theirs.keys()
    for part in ("lora_A", "lora_B"):
        keys = [k for k in ours if part in k]
        diff = sum(float((ours[k] - theirs[k]).norm() ** 2) for k in keys) ** 0.5
        assert diff < 0.02 * sum(float(theirs[k].norm() ** 2) for k in keys) ** 0.5, part


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-3 * max(1.0, abs(a))


def test_two_gloo_ranks_report_the_losses_of_one_process_and_resume_like_it(tiny_settings, tmp_path):
    one: list[dict] = []
    single = _spec(tiny_settings, tmp_path / "one")
    assert run_training(json.loads(single.read_text()), one.append) == "succeeded"

    lines, codes = _two_ranks(_spec(tiny_settings, tmp_path / "two"))
    assert codes == [0, 0], (tmp_path / "two" / "stderr.rank1.log").read_text()[-2000:]
    expected, got = _metrics(one), _metrics(lines)
    assert sorted(got) == sorted(expected) == [1, 2, 3, 4]  # 12 examples, batches of 6, 2 epochs: the same steps
    for step, metrics in expected.items():
        for key in ("train_loss", "valid_loss", "valid_mean_token_accuracy"):
            assert _close(metrics[key], got[step][key]), (step, key, metrics[key], got[step][key])
    # Rank 0 alone wrote: one checkpoint line per epoch, one result, the adapter; rank 1 wrote no result of its own.
    assert [line["step"] for line in lines if line["kind"] == "checkpoint"] == [2, 4]
    assert_same_adapter(lines, tmp_path / "one" / "out" / "adapter")
    (finished,) = [line for line in lines if line["kind"] == "event" and line["message"].startswith("New fine")]
    assert finished["data"]["processes"] == 2 and finished["data"]["tokens_per_second"] > 0

    # Resume two ranks from the one process's first checkpoint: steps 3 and 4 as that process trained them.
    (checkpoint,) = [line for line in one if line["kind"] == "checkpoint" and line["step"] == 2]
    resume = {"checkpoint_dir": checkpoint["path"], "step": 2, "reported_step": 2}
    lines, codes = _two_ranks(_spec(tiny_settings, tmp_path / "resumed", resume_from=resume))
    assert codes == [0, 0]
    got = _metrics(lines)
    assert sorted(got) == [3, 4]
    for step in (3, 4):
        assert _close(expected[step]["train_loss"], got[step]["train_loss"]), step


def test_sigterm_stops_every_rank_at_the_same_step(tiny_settings, tmp_path):
    spec = _spec(tiny_settings, tmp_path, hyperparameters={**HYPER, "n_epochs": 25, "batch_size": 2})
    group = TrainerGroup.start(COMMAND, spec, tmp_path, child_environ(ROOT), Layout("cpu", 2), ROOT)
    try:
        assert group.lead.stdout is not None
        deadline = time.monotonic() + 180
        for raw in group.lead.stdout:  # wait for a real (all-reduced) step, not just start-up
            line = p.parse_line(raw)
            if line and line["kind"] == "event" and line["type"] == "metrics":
                break
            assert time.monotonic() < deadline, "training never started"
        sent = time.monotonic()
        group.terminate()
        group.wait(timeout=10)
        assert time.monotonic() - sent < 6
        assert [process.returncode for process in group.processes] == [p.EXIT_CANCELLED] * 2
        assert group.lost_rank() is None  # stopped on purpose: no rank counts as lost
    finally:
        group.close()
    assert not (tmp_path / "out" / "adapter").exists()
