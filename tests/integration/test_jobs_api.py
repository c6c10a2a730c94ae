"""/api/jobs and /api/models end to end, with the real worker and local provider (fake trainer subprocess)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.jobs.model_catalog import resolve_model
from app.settings.maintenance import set_maintenance
from app.tables import Example
from app.worker.loop import Worker
from tests.conftest import API_KEY
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401
from tests.support.worker_main import FAKE_TRAINER


def run_queue(settings, engine) -> None:
    worker = Worker(settings, engine, providers=["local"], provider_options={"local": {"command": FAKE_TRAINER}})
    worker.run(once=True)


def test_a_job_launched_through_the_api_runs_and_its_model_can_be_listed_resolved_and_deleted(
    api: TestClient, session, settings, engine
):
    dataset = make_dataset(session, n_train=12, n_validation=2)
    created = api.post("/api/jobs", json={"dataset_id": dataset.id, "suffix": "api", "metadata": {"k": "v"}})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["validation_snapshot_id"] and job["estimate"]
    run_queue(settings, engine)
    done = api.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "succeeded" and done["fine_tuned_model"] == f"ft:tiny-llama:api:{job['id']}"
    assert api.get("/api/jobs", params={"metadata[k]": "v"}).json()["data"][0]["id"] == job["id"]
    assert api.get("/api/jobs", params={"metadata[k]": "w"}).json()["data"] == []
    events = api.get(f"/api/jobs/{job['id']}/events").json()["data"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    later = api.get(f"/api/jobs/{job['id']}/events", params={"after_seq": events[-3]["seq"]}).json()["data"]
    assert later == events[-2:]
    steps = [c["step_number"] for c in api.get(f"/api/jobs/{job['id']}/checkpoints").json()["data"]]
    assert steps == [8, 4]
    listed = {m["id"]: m for m in api.get("/api/models").json()["data"]}
    assert listed["tiny-llama"]["kind"] == "base"
    assert listed[done["fine_tuned_model"]]["kind"] == "tuned"
    assert listed[done["fine_tuned_model"] + ":ckpt-step-4"]["kind"] == "checkpoint"
    resolved = resolve_model(session, settings, done["fine_tuned_model"])
    adapter = resolved.ref.adapter_path
    assert resolved.provider == "local" and adapter.is_dir() and resolved.ref.base_model == "tiny-llama"
    set_maintenance(session, True)  # deleting needs the maintenance switch on
    deleted = api.delete(f"/api/models/{done['fine_tuned_model']}")
    assert deleted.json() == {"id": done["fine_tuned_model"], "object": "model", "deleted": True}
    assert not adapter.exists()
    assert done["fine_tuned_model"] not in {m["id"] for m in api.get("/api/models").json()["data"]}


def test_a_trainer_failure_ends_the_job_as_failed_with_the_trainers_words(api: TestClient, session, settings, engine):
    dataset = make_dataset(session)
    first = session.get(Example, session.exec(Example.__table__.select().limit(1)).first().id)
    first.messages = [{"role": "user", "content": "TRAINER_FAIL"}, {"role": "assistant", "content": "ok"}]
    session.add(first)
    session.commit()
    job = api.post("/api/jobs", json={"dataset_id": dataset.id}).json()
    run_queue(settings, engine)
    failed = api.get(f"/api/jobs/{job['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "invalid_training_data",
        "message": "The fake trainer was told to fail.",
        "param": None,
    }


def test_api_refusals_are_plain_json_with_codes(api: TestClient, session):
    small = make_dataset(session, n_train=3)
    refused = api.post("/api/jobs", json={"dataset_id": small.id})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_n_examples"
    missing = api.get("/api/jobs/ftjob-nope")
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
    assert api.post("/api/jobs/ftjob-nope/cancel").status_code == 404
    bad = api.post("/api/jobs", json={"dataset_id": make_dataset(session).id, "hyperparameters": {"n_epochs": "x"}})
    assert bad.status_code == 400 and "n_epochs" in bad.json()["detail"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_the_jobs_api_needs_the_bearer_key(app, headers):
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/jobs", headers=headers).status_code == 401
    assert API_KEY not in str(headers)
