"""What a job trains and validates on: the dataset page says it, and the launch's snapshots hold exactly that."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from app.datasets.snapshots import snapshot_dataset
from app.datasets.training_plan import training_plan
from app.jobs import jobs
from app.tables import Example, Snapshot
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401


def _set_split(session: Session, dataset_id: int, split: str | None, count: int) -> None:
    rows = session.exec(
        select(Example).where(Example.dataset_id == dataset_id, col(Example.split).is_(None)).limit(count)
    ).all()
    for example in rows:
        example.split = split
        session.add(example)
    session.commit()


@pytest.mark.parametrize(
    ("n_train", "n_validation", "to_train_split", "trains", "validates"),
    [(15, 0, 0, 15, None), (13, 3, 8, 13, 3), (12, 0, 12, 12, None), (20, 5, 0, 20, 5)],
)
def test_the_plan_and_the_launch_agree(session, settings, n_train, n_validation, to_train_split, trains, validates):
    dataset = make_dataset(session, n_train=n_train, n_validation=n_validation)
    _set_split(session, dataset.id, "train", to_train_split)
    plan = training_plan(session, dataset.id)
    assert (plan.train, plan.validates_on) == (trains, validates)
    job = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id))
    assert session.get(Snapshot, job.training_snapshot_id).n_examples == plan.train
    validation = session.get(Snapshot, job.validation_snapshot_id) if job.validation_snapshot_id else None
    assert (validation.n_examples if validation else None) == plan.validates_on


def test_invalid_examples_are_counted_and_left_out_of_the_snapshot(session, settings):
    dataset = make_dataset(session, n_train=12, n_broken=2)
    plan = training_plan(session, dataset.id)
    assert (plan.train, plan.invalid) == (12, 2)
    assert snapshot_dataset(session, settings, dataset.id, "train").n_examples == plan.train
    assert "2 invalid examples left out" in plan.sentence()


def test_the_dataset_page_says_what_a_job_trains_on_without_a_split(client, session):
    dataset = make_dataset(session, n_train=15)
    page = client.get(f"/datasets/{dataset.id}").text
    assert "A job launched here trains on 15 examples (no split set: all valid examples) and validates on none." in page


def test_the_dataset_page_says_train_and_validation_counts(client, session):
    dataset = make_dataset(session, n_train=120, n_validation=30)
    _set_split(session, dataset.id, "train", 120)
    page = client.get(f"/datasets/{dataset.id}").text
    assert "A job launched here trains on 120 train examples and validates on 30." in page
