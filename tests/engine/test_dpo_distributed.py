"""DPO on two gloo ranks of this CPU: the same steps, DPO metrics and adapter as one process, and a resume alike.

Each rank scores its share of every step's pairs (and of the reference and validation passes); the all-reduced
gradients and totals make rank 0 report the one-process figures (the supervised test's tolerance).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.engine import protocol as p
from app.engine.train import run_training
from app.providers.local import ROOT
from app.providers.local_ranks import Layout, TrainerGroup, child_environ
from tests.engine.test_distributed import COMMAND, _close, _metrics, _two_ranks, assert_same_adapter
from tests.engine.test_dpo import dpo_spec

pytestmark = pytest.mark.slow

HYPER = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1, "lora_rank": 4}
COMPARED = ("train_loss", "train_reward_margin", "train_reward_chosen", "valid_loss", "valid_reward_margin")


def _spec_file(settings, tmp_path: Path, **overrides) -> Path:
    spec = {**dpo_spec(settings, tmp_path), **overrides}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_two_gloo_ranks_train_dpo_as_one_process_does_and_resume_like_it(tiny_settings, tmp_path):
    one: list[dict] = []
    single = _spec_file(tiny_settings, tmp_path / "one")
    assert run_training(json.loads(single.read_text()), one.append) == "succeeded"

    lines, codes = _two_ranks(_spec_file(tiny_settings, tmp_path / "two"))
    assert codes == [0, 0], (tmp_path / "two" / "stderr.rank1.log").read_text()[-2000:]
    expected, got = _metrics(one), _metrics(lines)
    assert sorted(got) == sorted(expected) == [1, 2, 3, 4, 5, 6]  # 12 pairs, batches of 4, 2 epochs
    for step, metrics in expected.items():
        assert set(got[step]) >= {f"{s}_{k}" for s in ("train", "valid") for k in p.DPO_METRIC_KEYS}
        for key in COMPARED:
            assert _close(metrics[key], got[step][key]), (step, key, metrics[key], got[step][key])
    # The preference was learned alike: the last step's accuracy on the training and validation pairs.
    for key in ("train_reward_accuracy", "valid_reward_accuracy"):
        assert got[6][key] == expected[6][key], key
    assert [line["step"] for line in lines if line["kind"] == "checkpoint"] == [3, 6]
    assert_same_adapter(lines, tmp_path / "one" / "out" / "adapter")
    (finished,) = [line for line in lines if line["kind"] == "event" and line["message"].startswith("New fine")]
    assert finished["data"]["processes"] == 2
    assert not (tmp_path / "two" / "stderr.rank1.log").read_text().strip()  # rank 1 reported nothing of its own

    # Two ranks resume from the one process's first checkpoint: steps 4-6 as that process trained them.
    (checkpoint,) = [line for line in one if line["kind"] == "checkpoint" and line["step"] == 3]
    resume = {"checkpoint_dir": checkpoint["path"], "step": 3, "reported_step": 3}
    lines, codes = _two_ranks(_spec_file(tiny_settings, tmp_path / "resumed", resume_from=resume))
    assert codes == [0, 0]
    got = _metrics(lines)
    assert sorted(got) == [4, 5, 6]
    for step in (4, 5, 6):
        assert _close(expected[step]["train_loss"], got[step]["train_loss"]), step


def test_sigterm_stops_both_dpo_ranks_at_the_same_step(tiny_settings, tmp_path):
    spec = _spec_file(tiny_settings, tmp_path, hyperparameters={**HYPER, "n_epochs": 25, "batch_size": 2})
    group = TrainerGroup.start(COMMAND, spec, tmp_path, child_environ(ROOT), Layout("cpu", 2), ROOT)
    try:
        assert group.lead.stdout is not None
        deadline = time.monotonic() + 180
        for raw in group.lead.stdout:  # wait for a real (all-reduced) step, not just the reference pass
            line = p.parse_line(raw)
            if line and line["kind"] == "event" and line["type"] == "metrics":
                break
            assert time.monotonic() < deadline, "training never started"
        sent = time.monotonic()
        group.terminate()
        group.wait(timeout=10)
        assert time.monotonic() - sent < 6
        assert [process.returncode for process in group.processes] == [p.EXIT_CANCELLED] * 2
        assert group.lost_rank() is None
    finally:
        group.close()
    assert not (tmp_path / "out" / "adapter").exists()
