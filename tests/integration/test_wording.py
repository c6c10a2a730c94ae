"""Wording a user reads: counts in the right number, an ended job described in good English."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import Invalid
from app.jobs import jobs
from app.settings.maintenance import set_maintenance
from app.web.rendering import make_templates, plural
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401


def test_counts_take_the_noun_in_the_right_number():
    assert plural(1, "epoch") == "1 epoch"
    assert plural(3, "epoch") == "3 epochs"
    assert plural(0, "example") == "0 examples"
    assert plural(1200, "example") == "1,200 examples"
    env = make_templates().env
    assert env.from_string('{{ n|plural("epoch") }}').render(n=1) == "1 epoch"


def test_templates_print_no_count_with_a_hard_coded_plural():
    root = Path(__file__).resolve().parents[2] / "app" / "templates"
    for path in (root / "reports" / "_report.html", root / "datasets" / "delete.html", root / "models" / "index.html"):
        text = path.read_text()
        assert "}} epochs" not in text and "}} examples" not in text, path


def test_cancelling_a_cancelled_job_says_it_has_already_been_cancelled(session, settings):
    set_maintenance(session, True)
    job = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id))
    jobs.cancel_job(session, job.id)
    with pytest.raises(Invalid) as refused:
        jobs.cancel_job(session, job.id)
    assert f"Job {job.id} has already been cancelled; it cannot be cancelled." == refused.value.message
