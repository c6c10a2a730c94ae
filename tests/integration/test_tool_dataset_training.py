"""The shared tool-calling dataset imports, is fixed in the editor where the validator says so, and trains locally."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, col, select

from app.datasets.datasets import create_dataset
from app.datasets.examples import update_example
from app.datasets.importer import import_file
from app.jobs.launch import JobRequest, create_job
from app.tables import Example, Job, JobStatus
from app.worker.loop import Worker
from tests.conftest import FIXTURES, SHARED
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401
from tests.support.long_example_trainer import LONG_EXAMPLE_TRAINER

pytestmark = pytest.mark.slow

NAME = "daneel_shop_tools_validation_set.jsonl"
SHOP_TOOLS = FIXTURES / NAME if (FIXTURES / NAME).exists() else SHARED / "datasets" / NAME


def _with_string_arguments(messages: list[dict]) -> list[dict]:
    """The editor's fix for the dataset's named mistake: each call's arguments as a string of JSON."""
    for message in messages:
        for call in message.get("tool_calls") or []:
            if not isinstance(call["function"]["arguments"], str):
                call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
    return messages


def test_the_shared_tool_calling_dataset_imports_and_trains_through_the_worker(session, settings, engine):
    dataset = create_dataset(session, "shop tools")
    with SHOP_TOOLS.open("rb") as stream:
        result = import_file(session, dataset.id, stream, filename=SHOP_TOOLS.name, settings=settings)
    assert result.imported == 90 and result.rejected_count == 0
    assert {code for _, code, _ in result.invalid} == {"invalid_tool_arguments"}
    broken = session.exec(select(Example).where(Example.dataset_id == dataset.id, col(Example.valid).is_(False)))
    for example in broken.all():
        record = example.to_record()
        update_example(
            session, example.id, record | {"messages": _with_string_arguments(record["messages"])}, example.version
        )
    assert all(e.valid for e in session.exec(select(Example).where(Example.dataset_id == dataset.id)))

    job = create_job(
        session,
        settings,
        JobRequest(
            dataset_id=dataset.id,
            model=TINY,
            seed=5,
            hyperparameters={"n_epochs": 1, "batch_size": 30, "lora_rank": 4},
            accept_warnings=True,
        ),
    )
    options = {"local": {"command": LONG_EXAMPLE_TRAINER}}  # the real trainer; see the module for why longer
    assert Worker(settings, engine, providers=["local"], provider_options=options, gpu=False).step()
    with Session(engine) as fresh:
        done = fresh.get_one(Job, job.id)
    assert done.status == JobStatus.succeeded, done.error
    assert done.trained_tokens and done.trained_tokens > 0
