"""Acceptance: with the real openai SDK on a live server with its worker, a string_check eval over a dataset's
held-out split, run on the tiny base model and on the model tuned on the train split for the format the items
expect: the tuned run passes more items, and its output items show each answer and its grade."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI
from sqlmodel import Session

from app.datasets.validation import apply_check
from app.main import create_app
from app.tables import Dataset, Example
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support.jobs_fixtures import TINY, tiny_model  # noqa: F401
from tests.support.openai_schemas import checked as ok
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

GOOD = ["great", "lovely", "superb", "fine", "nice", "happy"]
BAD = ["awful", "poor", "sad", "broken", "ugly", "dull"]


def review(i: int) -> dict:
    """A review whose answer is exactly `LABEL: positive` or `LABEL: negative` (even i positive)."""
    positive = i % 2 == 0
    word = (GOOD if positive else BAD)[(i // 2) % len(GOOD)]
    return {
        "messages": [
            {"role": "system", "content": "Classify the review."},
            {"role": "user", "content": f"Review {i}: it was {word}."},
            {"role": "assistant", "content": "LABEL: positive" if positive else "LABEL: negative"},
        ]
    }


@pytest.fixture
def working_server(tmp_path, tiny_model):
    settings = make_settings(
        tmp_path / "data",
        embedded_worker=True,
        worker_poll_seconds=0.05,
        heartbeat_seconds=0.2,
        local_models={TINY: tiny_model},
    )
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        live.settings = settings
        yield live


def _labelled_dataset(settings) -> int:
    """24 training reviews and 8 held out (the validation split), every answer in the strict format."""
    engine = make_engine(settings)
    with Session(engine) as session:
        dataset = Dataset(name="reviews")
        session.add(dataset)
        session.commit()
        for position in range(32):
            example = Example(
                dataset_id=dataset.id,
                position=position,
                messages=review(position)["messages"],
                split="validation" if position >= 24 else None,
            )
            apply_check(example)
            session.add(example)
        session.commit()
        dataset_id = dataset.id
    engine.dispose()
    return dataset_id


def _finished(client: OpenAI, eval_id: str, run_id: str):
    run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
    return run if run.status in ("completed", "failed", "canceled") else None


def test_a_model_tuned_for_the_format_passes_more_held_out_items_than_its_base(working_server):
    dataset_id = _labelled_dataset(working_server.settings)
    # Enough for the tiny random model to learn the format on this CPU (seeds 1-3 tried: every answer in the format,
    # 4-6 of 8 labels right); at 10 epochs it stammers ("L:L:L:Be"), at 20x the learning rate it diverges.
    hyperparameters = {"n_epochs": 30, "batch_size": 4, "learning_rate_multiplier": 5, "lora_rank": 8}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with (
        httpx.Client(base_url=working_server.url, headers=headers) as api,
        httpx.Client(base_url=working_server.url + "/v1", headers=headers) as raw,
        OpenAI(base_url=working_server.url + "/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        # Tuned on the train split only: the job holds the validation split out.
        launched = api.post(
            "/api/jobs",
            # Its templated examples are near-duplicates of each other (#21's warnings): launched knowingly.
            json={
                "dataset_id": dataset_id,
                "model": TINY,
                "hyperparameters": hyperparameters,
                "seed": 1,
                "accept_warnings": True,
            },
        )
        assert launched.status_code == 201, launched.text
        job_id = launched.json()["id"]
        job = wait_for(
            lambda: (
                (j := client.fine_tuning.jobs.retrieve(job_id)).status in ("succeeded", "failed", "cancelled") and j
            ),
            240,
            "the tuning job to end",
        )
        assert job.status == "succeeded", job.error
        held_out = client.evals.create(
            name="label format",
            data_source_config={
                "type": "custom",
                "item_schema": {
                    "type": "object",
                    "properties": {"messages": {"type": "array"}, "reference": {"type": "string"}},
                    "required": ["messages", "reference"],
                },
                "include_sample_schema": True,
            },
            testing_criteria=[
                {
                    "type": "string_check",
                    "name": "exact answer",
                    "input": "{{sample.output_text}}",
                    "reference": "{{item.reference}}",
                    "operation": "eq",
                }
            ],
            extra_body={"dataset": {"id": dataset_id, "split": "validation"}},
        )

        def run_on(model: str):
            return client.evals.runs.create(
                held_out.id,
                name=model,
                data_source={
                    "type": "completions",
                    "model": model,
                    "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                    "source": {"type": "dataset", "dataset_id": dataset_id, "split": "validation"},
                    "sampling_params": {"temperature": 0, "max_completion_tokens": 16, "seed": 3},
                },
            )

        base_run, tuned_run = run_on(TINY), run_on(job.fine_tuned_model)
        base = wait_for(lambda: _finished(client, held_out.id, base_run.id), 180, "the base model's run")
        tuned = wait_for(lambda: _finished(client, held_out.id, tuned_run.id), 180, "the tuned model's run")
        assert (base.status, tuned.status) == ("completed", "completed"), (base.error, tuned.error)
        assert base.result_counts.total == tuned.result_counts.total == 8
        assert base.result_counts.errored == tuned.result_counts.errored == 0
        assert tuned.result_counts.passed > base.result_counts.passed
        assert tuned.per_testing_criteria_results[0].testing_criteria == "exact answer"
        assert tuned.per_testing_criteria_results[0].passed == tuned.result_counts.passed
        assert tuned.per_model_usage[0].model_name == job.fine_tuned_model
        assert tuned.per_model_usage[0].invocation_count == 8 and tuned.per_model_usage[0].completion_tokens > 0
        ok(raw.get(f"/evals/{held_out.id}/runs/{tuned.id}"), "EvalRun")

        items = list(client.evals.runs.output_items.list(tuned.id, eval_id=held_out.id, limit=3))
        assert len(items) == 8 and [i.datasource_item_id for i in items] == list(range(8))
        for item in items:
            answer = item.sample.output[0].content
            grade = item.results[0]
            assert grade.name == "exact answer"
            assert grade.passed is (answer == item.datasource_item["reference"])
            assert item.status == ("pass" if grade.passed else "fail")
            assert item.sample.input[-1].content == item.datasource_item["messages"][-1]["content"]
        assert sum(i.status == "pass" for i in items) == tuned.result_counts.passed
        assert all(i.sample.output[0].content in ("LABEL: positive", "LABEL: negative") for i in items)
        page = ok(raw.get(f"/evals/{held_out.id}/runs/{tuned.id}/output_items"), "EvalRunOutputItemList")
        assert len(page["data"]) == 8
