"""DPO jobs through /v1 and /api: the method fits the data's kind or the launch is refused in each door's shape."""

from __future__ import annotations

import io
import json

from fastapi.testclient import TestClient
from sqlmodel import select

from app.datasets.validation import apply_check
from app.tables import Dataset, Example, Job
from app.tables.dataset import PREFERENCE
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401

DPO = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}


def chat(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"say {i}"}, {"role": "assistant", "content": f"{i}"}]}


def pair(i: int) -> dict:
    return {
        "input": {"messages": [{"role": "user", "content": f"say {i}"}]},
        "preferred_output": [{"role": "assistant", "content": f"{i}. Cheers!"}],
        "non_preferred_output": [{"role": "assistant", "content": f"{i}."}],
    }


def upload(api: TestClient, records: list[dict]) -> str:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    answer = api.post("/v1/files", files={"file": ("data.jsonl", io.BytesIO(data))}, data={"purpose": "fine-tune"})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def preference_dataset(session, n: int = 12) -> Dataset:
    """A preference dataset written straight to the database."""
    dataset = Dataset(name="prefs", kind=PREFERENCE)
    session.add(dataset)
    session.commit()
    for position in range(n):
        record = pair(position)
        example = Example(
            dataset_id=dataset.id,
            position=position,
            messages=record["input"]["messages"],
            preferred_output=record["preferred_output"],
            non_preferred_output=record["non_preferred_output"],
        )
        apply_check(example)
        session.add(example)
    session.commit()
    return dataset


def test_v1_refuses_a_chat_file_for_a_dpo_job_and_a_preference_file_for_a_supervised_one(api: TestClient, session):
    chats = upload(api, [chat(i) for i in range(12)])
    refused = api.post("/v1/fine_tuning/jobs", json={"model": "tiny-llama", "training_file": chats, "method": DPO})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_training_file",
        "training_file",
    )
    assert "preference" in error["message"] and chats in error["message"]

    pairs = upload(api, [pair(i) for i in range(12)])
    refused = api.post("/v1/fine_tuning/jobs", json={"model": "tiny-llama", "training_file": pairs})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_training_file" and "DPO" in refused.json()["error"]["message"]
    validation = api.post(
        "/v1/fine_tuning/jobs",
        json={"model": "tiny-llama", "training_file": pairs, "validation_file": chats, "method": DPO},
    )
    assert validation.status_code == 400 and validation.json()["error"]["param"] == "validation_file"
    assert session.exec(select(Job)).all() == []


def test_v1_checks_dpo_hyperparameters_and_returns_the_method_as_openai_does(api: TestClient, session):
    pairs = upload(api, [pair(i) for i in range(12)])
    body = {"model": "tiny-llama", "training_file": pairs}
    for method, param in (
        ({"type": "dpo", "dpo": {"hyperparameters": {"beta": 5}}}, "hyperparameters.beta"),
        ({"type": "dpo", "dpo": {"hyperparameters": {"beta": "much"}}}, "hyperparameters.beta"),
        ({"type": "reinforcement"}, "method.type"),
    ):
        refused = api.post("/v1/fine_tuning/jobs", json={**body, "method": method})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text
    supervised_beta = {"type": "supervised", "supervised": {"hyperparameters": {"beta": 0.1}}}
    chats = upload(api, [chat(i) for i in range(12)])
    refused = api.post("/v1/fine_tuning/jobs", json={**body, "training_file": chats, "method": supervised_beta})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "hyperparameters.beta"

    created = api.post("/v1/fine_tuning/jobs", json={**body, "method": DPO})
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["method"]["type"] == "dpo"
    assert job["method"]["dpo"]["hyperparameters"]["beta"] == 0.2
    assert job["method"]["dpo"]["hyperparameters"]["n_epochs"] == "auto"
    assert api.get(f"/v1/fine_tuning/jobs/{job['id']}").json()["method"] == job["method"]


def test_api_jobs_refuse_a_method_that_does_not_fit_the_dataset(api: TestClient, session):
    chats = make_dataset(session)
    refused = api.post("/api/jobs", json={"dataset_id": chats.id, "method": DPO})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_training_file" and "preference" in refused.json()["detail"]
    prefs = preference_dataset(session)
    refused = api.post("/api/jobs", json={"dataset_id": prefs.id})
    assert refused.status_code == 400 and "DPO" in refused.json()["detail"]


def test_a_dpo_job_is_rerun_as_a_dpo_job_with_its_beta(api: TestClient, session, settings):
    from app.jobs.jobs import rerun_job

    pairs = upload(api, [pair(i) for i in range(12)])
    first = api.post("/v1/fine_tuning/jobs", json={"model": "tiny-llama", "training_file": pairs, "method": DPO})
    again = rerun_job(session, settings, first.json()["id"])
    assert again.method["type"] == "dpo" and again.hyperparameters["beta"] == 0.2
