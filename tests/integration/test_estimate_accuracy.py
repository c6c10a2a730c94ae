"""After a real (tiny-model) job, the launch estimate's tokens agree with what the engine trained (issue #17)."""

from __future__ import annotations

import pytest

from tests.support.tiny_jobs import tiny_model, tiny_worker  # noqa: F401

pytestmark = pytest.mark.slow


def test_estimated_tokens_of_a_finished_job_are_within_15_percent_of_its_trained_tokens(tiny_worker):
    dataset = tiny_worker.dataset(n_train=12, n_validation=2)
    # Explicit epochs: the estimate must follow them, not the default for 12 examples.
    done = tiny_worker.run_job(dataset_id=dataset.id, seed=1, hyperparameters={"n_epochs": 2, "batch_size": 4})
    assert done["status"] == "succeeded", done["error"]
    estimate = done["estimate"]
    assert estimate["n_epochs"] == 2 and estimate["n_steps"] == 6
    assert done["trained_tokens"] == pytest.approx(estimate["charged_tokens"], rel=0.15)
