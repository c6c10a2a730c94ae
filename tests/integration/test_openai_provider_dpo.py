"""DPO jobs on the OpenAI provider: the real SDK against the stand-in server, the method passed on as given."""

from __future__ import annotations

import json

from sqlmodel import Session

from app.datasets.snapshots import write_snapshot
from app.jobs import jobs
from app.tables import Job, JobStatus
from tests.integration.test_dpo_jobs import pair
from tests.integration.test_openai_provider import MODEL, fake, fake_server, run_one  # noqa: F401
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401

DPO = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.3, "n_epochs": 2}}}


def launch_dpo(session: Session, settings, model: str = MODEL) -> Job:
    data = "".join(json.dumps(pair(i)) + "\n" for i in range(12)).encode()
    snap = write_snapshot(session, settings, data)
    session.commit()
    request = jobs.JobRequest(training_snapshot=snap.id, provider="openai", model=model, method=DPO)
    return jobs.create_job(session, settings, request)


def test_a_dpo_job_goes_to_openai_with_its_method_and_beta(session, settings, engine, fake):
    launched = launch_dpo(session, settings)
    assert launched.method == {"type": "dpo", "dpo": {"hyperparameters": launched.hyperparameters}}
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.succeeded
    sent = fake.state.jobs[job.provider_job_id]
    assert sent["method"]["type"] == "dpo"
    assert sent["method"]["dpo"]["hyperparameters"] == {
        "beta": 0.3,
        "n_epochs": 2,
        "batch_size": 1,
        "learning_rate_multiplier": 1.8,
    }
    assert job.hyperparameters["beta"] == 0.3 and job.hyperparameters["learning_rate_multiplier"] == 1.8
    uploaded = fake.state.contents[sent["training_file"]].splitlines()
    assert json.loads(uploaded[0])["preferred_output"]  # the snapshot's DPO lines, as OpenAI expects them


def test_openai_refusing_a_dpo_job_fails_it_in_plain_words(session, settings, engine, fake):
    launch_dpo(session, settings)
    fake.state.not_fine_tunable.add(MODEL)
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.failed and job.error["code"] == "model_not_fine_tunable"
    assert MODEL in job.error["message"]
