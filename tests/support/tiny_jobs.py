"""Running a tiny job through the worker: an app whose embedded worker trains the tiny random Llama, a client with
the API key, datasets written straight to the database, and a launch that waits for the job to end.

    from tests.support.tiny_jobs import tiny_model, tiny_worker  # noqa: F401

    def test_something(tiny_worker):
        dataset = tiny_worker.dataset(n_train=12)
        done = tiny_worker.run_job(dataset_id=dataset.id, seed=1, hyperparameters={"n_epochs": 1})
        assert done["status"] == "succeeded", done["error"]

`echo_records()` is a dataset whose answers echo the question's word, except a few (WRONG) that are random.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.datasets.validation import apply_check
from app.main import create_app
from app.tables import Dataset, Example
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, csrf_token, make_settings
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, tiny_model
from tests.support.waiting import wait_for

__all__ = [
    "TINY",
    "WRONG",
    "TinyWorker",
    "dataset_of_records",
    "echo_records",
    "running_tiny_worker",
    "tiny_model",
    "tiny_worker",
]

ENDED = ("succeeded", "failed", "cancelled")
JOB_TIMEOUT = 240.0  # a tiny job takes seconds alone; seven test runs sharing two cores make it minutes


def dataset_of_records(session: Session, records: list[dict], name: str = "records") -> Dataset:
    """A dataset of these chat records in order; a record's "split" key (if any) is its split."""
    dataset = Dataset(name=name)
    session.add(dataset)
    session.commit()
    for position, record in enumerate(records):
        example = Example(
            dataset_id=dataset.id, position=position, messages=record["messages"], split=record.get("split")
        )
        apply_check(example)
        session.add(example)
    session.commit()
    return dataset


WORDS = ["cat", "dog", "fox", "the", "quick", "brown", "lazy", "hello", "world", "capital"]
WRONG = (3, 11, 19, 27)  # the lines of echo_records() whose answer is wrong


def echo_records(n: int = 32, wrong: tuple[int, ...] = WRONG, seed: int = 3) -> list[dict]:
    """Chats whose right answer echoes the question's word; the `wrong` ones answer a random string instead."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        answer = "".join(rng.choice("bcdfghjkmnpqvwxz") for _ in range(6)) if i in wrong else word
        records.append(
            {
                "messages": [
                    {"role": "user", "content": f"Repeat the word: {word}"},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return records


@dataclass
class TinyWorker:
    """An app with its embedded worker running (through `api`'s lifespan) and the tiny model as default base."""

    settings: Settings
    app: FastAPI
    api: TestClient  # the API key set; entered, so the app's worker runs while it is open

    def dataset(self, **kwargs: Any) -> Dataset:
        """A dataset of small valid chats (tests.support.builders.make_dataset's arguments)."""
        with Session(self.app.state.engine, expire_on_commit=False) as session:
            return make_dataset(session, **kwargs)

    def dataset_of(self, records: list[dict], name: str = "records") -> Dataset:
        """A dataset of these chat records in order (see dataset_of_records)."""
        with Session(self.app.state.engine, expire_on_commit=False) as session:
            return dataset_of_records(session, records, name)

    def launch(self, **body: Any) -> dict:
        """POST /api/jobs with this body; the created job."""
        response = self.api.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def wait(self, job_id: str, timeout: float = JOB_TIMEOUT) -> dict:
        """The job once it has ended (succeeded, failed or cancelled)."""
        return wait_for(
            lambda: (job := self.api.get(f"/api/jobs/{job_id}").json())["status"] in ENDED and job,
            timeout,
            f"the job {job_id} to end",
        )

    def run_job(self, timeout: float = JOB_TIMEOUT, **body: Any) -> dict:
        """Launch a job and wait for it to end; the ended job (its status is the caller's to check)."""
        return self.wait(self.launch(**body)["id"], timeout)

    def browser(self) -> TestClient:
        """A client that behaves like a browser tab (browser id cookie, CSRF header) on the same app; not entered,
        so it starts no second worker."""
        client = TestClient(self.app)
        client.headers["X-CSRF-Token"] = csrf_token(client)
        return client


@contextmanager
def running_tiny_worker(data_dir: Path, model_dir: Path, **overrides: Any) -> Iterator[TinyWorker]:
    """Migrated settings with the embedded worker and the tiny model, and the app running while the block runs."""
    values: dict[str, Any] = {
        "embedded_worker": True,
        "local_models": {TINY: model_dir},
        "default_base_model": TINY,
        "heartbeat_seconds": 0.2,
        "worker_poll_seconds": 0.05,
    }
    settings = make_settings(data_dir, **{**values, **overrides})
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        yield TinyWorker(settings, app, api)


@pytest.fixture
def tiny_worker(tmp_path: Path, tiny_model: Path) -> Iterator[TinyWorker]:
    """An app whose embedded worker trains the tiny model, running for the test."""
    with running_tiny_worker(tmp_path / "data", tiny_model) as worker:
        yield worker
