"""Acceptance (issue #21): a short job on the tiny model whose data holds a few deliberately wrong answers lists
them among its highest-loss examples, linked to their examples."""

from __future__ import annotations

import pytest

from tests.support.tiny_jobs import WRONG, echo_records, tiny_model, tiny_worker  # noqa: F401

pytestmark = pytest.mark.slow


def test_the_deliberately_wrong_answers_are_among_the_highest_losses(tiny_worker):
    dataset = tiny_worker.dataset_of(echo_records(), name="echo")
    hyper = {"n_epochs": 6, "batch_size": 4, "learning_rate_multiplier": 50, "lora_rank": 8}
    done = tiny_worker.run_job(dataset_id=dataset.id, seed=7, hyperparameters=hyper, accept_warnings=True)
    assert done["status"] == "succeeded", done["error"]
    body = tiny_worker.api.get(f"/api/jobs/{done['id']}/example_losses", params={"limit": 32}).json()
    assert body["state"] == "ready" and body["n_train"] == 32
    ranked = body["highest"]
    top = {x["line"] for x in ranked[: len(WRONG) + 2]}
    assert set(WRONG) <= top, [(x["line"], round(x["loss"], 3)) for x in ranked[:8]]
    wrong = [x["loss"] for x in ranked if x["line"] in WRONG]
    right = [x["loss"] for x in ranked if x["line"] not in WRONG]
    assert min(wrong) > sorted(right)[len(right) // 2]  # every wrong one is above the median right one
    # Each line names its example (the dataset has no validation split: lines are positions here).
    by_line = {x["line"]: x for x in ranked}
    assert by_line[WRONG[0]]["preview"].startswith("Repeat the word: the → ")
    assert all(x["example_id"] and not x["deleted"] for x in ranked)
    events = [e["message"] for e in tiny_worker.api.get(f"/api/jobs/{done['id']}/events").json()["data"]]
    assert any(m.startswith("Recorded the final loss of 32 training and 0 validation examples") for m in events)
