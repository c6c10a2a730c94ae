"""The OpenAI provider with the real SDK over HTTP against a stand-in server on 127.0.0.1."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from app.jobs import jobs
from app.jobs.queue import claim_next
from app.providers.registry import get_provider
from app.settings.maintenance import set_maintenance
from app.tables import Checkpoint, Job, JobEvent, JobStatus, TunedModel
from app.worker.loop import Worker
from tests.conftest import LiveServer, free_port
from tests.support.builders import make_dataset
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401
from tests.support.waiting import wait_for

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def fake_server():
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


@pytest.fixture
def fake(fake_server):
    """The stand-in's state, reset for each test."""
    fresh = FakeOpenAIState()
    fake_server.state.__dict__.update(fresh.__dict__)
    return fake_server


def options(fake, **extra):
    return {
        "api_key": KEY,
        "base_url": fake.url + "/v1",
        "poll_seconds": 0.01,
        "retry_seconds": 0.01,
        "max_retries": 2,
    } | extra


def run_one(settings, engine, fake, **extra) -> Job:
    worker = Worker(settings, engine, providers=["openai"], provider_options={"openai": options(fake, **extra)})
    assert worker.step()
    with Session(engine) as s:
        return s.get(Job, s.exec(select(Job.id)).first())


def launch(session, settings, **kw) -> Job:
    dataset = make_dataset(session)
    return jobs.create_job(
        session, settings, jobs.JobRequest(dataset_id=dataset.id, provider="openai", model=MODEL, **kw)
    )


def events_of(engine, job_id):
    with Session(engine) as s:
        return list(s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))


def test_an_openai_job_runs_to_success_with_events_checkpoints_and_model(session, settings, engine, fake):
    launch(session, settings, suffix="notes", seed=3, hyperparameters={"n_epochs": 2}, metadata={"team": "a"})
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.succeeded and job.trained_tokens == 1234
    assert job.provider_job_id in fake.state.jobs
    sent = fake.state.jobs[job.provider_job_id]
    assert sent["suffix"] == "notes" and sent["seed"] == 3 and sent["metadata"] == {"team": "a"}
    assert sent["hyperparameters"]["n_epochs"] == 2 and job.hyperparameters["learning_rate_multiplier"] == 1.8
    assert fake.state.files[sent["training_file"]]["purpose"] == "fine-tune"
    messages = [e.message for e in events_of(engine, job.id)]
    remote = [e["message"] for e in fake.state.events[job.provider_job_id]]
    assert [m for m in messages if m in remote] == remote  # every provider event once, in order
    with Session(engine) as s:
        assert s.get(TunedModel, job.fine_tuned_model).provider == "openai"
        cps = list(s.exec(select(Checkpoint).where(Checkpoint.job_id == job.id)))
    assert [c.step_number for c in cps] == [3]


def test_rate_limits_and_server_errors_are_retried_and_the_job_keeps_going(session, settings, engine, fake):
    launch(session, settings)
    fake.state.fail_times(429, 3)
    fake.state.fail_times(500, 3)
    job = run_one(settings, engine, fake, max_retries=1)
    assert job.status == JobStatus.succeeded
    warnings = [e.message for e in events_of(engine, job.id) if e.level == "warn"]
    assert any("rate limiting" in w for w in warnings) and any("could not be reached or failed" in w for w in warnings)


def test_a_permission_refusal_says_so_and_offers_the_local_engine(session, settings, engine, fake):
    launch(session, settings)
    fake.state.deny_fine_tuning = True
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.failed and job.error["code"] == "fine_tuning_not_permitted"
    assert "2027-01-06" in job.error["message"] and "local engine" in job.error["message"]
    local = jobs.rerun_job(session, settings, job.id, provider="local")
    assert local.provider == "local" and local.model == settings.default_base_model
    assert local.training_snapshot_id == job.training_snapshot_id


def test_a_job_that_fails_at_openai_fails_here_with_its_message(session, settings, engine, fake):
    launch(session, settings)
    fake.state.fail_jobs = True
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.failed
    assert job.error["message"] == "The job failed due to an invalid training file."


@pytest.mark.parametrize(("key", "code"), [("sk-wrong", "invalid_api_key"), (None, "missing_api_key")])
def test_a_missing_or_invalid_key_fails_the_job_in_plain_words(session, settings, engine, fake, key, code):
    launch(session, settings)
    job = run_one(settings, engine, fake, api_key=key)
    assert job.status == JobStatus.failed and job.error["code"] == code
    assert "sk-wrong" not in job.error["message"]


def test_a_model_openai_cannot_fine_tune_is_named(session, settings, engine, fake):
    launch(session, settings)
    fake.state.not_fine_tunable.add(MODEL)
    job = run_one(settings, engine, fake)
    assert job.error["code"] == "model_not_fine_tunable" and MODEL in job.error["message"]


def test_cancel_is_passed_to_openai_and_reflected_when_it_confirms(session, settings, engine, fake):
    job_id = launch(session, settings).id
    fake.state.hold_running = True
    worker = Worker(
        settings, engine, providers=["openai"], provider_options={"openai": options(fake, poll_seconds=0.05)}
    )
    thread = threading.Thread(target=worker.step)
    thread.start()
    try:
        wait_for(
            lambda: fake.state.jobs and next(iter(fake.state.jobs.values()))["status"] == "running",
            10,
            "the job to run at OpenAI",
        )
        with Session(engine, expire_on_commit=False) as s:
            set_maintenance(s, True)  # cancel needs the maintenance switch on
            jobs.cancel_job(s, job_id)
        thread.join(timeout=10)
    finally:
        worker.shutdown.set()
        thread.join(timeout=10)
    with Session(engine) as s:
        assert s.get(Job, job_id).status == JobStatus.cancelled
    assert any(r.endswith("/cancel") for r in fake.state.requests)


def test_chat_streams_and_models_are_deleted_through_the_sdk(settings, fake):
    with get_provider("openai", settings, **options(fake)) as provider:
        chunks = list(provider.stream_chat("ft:gpt-4o-mini:org:x:1", [{"role": "user", "content": "hi"}], None))
        assert "".join(c.text for c in chunks) == "Hello from ft:gpt-4o-mini:org:x:1"
        assert chunks[-1].usage["total_tokens"] == 9 and chunks[-1].finish_reason == "stop"
        provider.delete_model("ft:gpt-4o-mini:org:x:1")
    assert fake.state.deleted_models == ["ft:gpt-4o-mini:org:x:1"]


def test_jobs_made_elsewhere_are_imported_once_across_pages(session, settings, engine, fake):
    with get_provider("openai", settings, **options(fake)) as provider:
        client = provider.client
        training = client.files.create(file=("t.jsonl", b'{"messages": []}\n' * 12), purpose="fine-tune")
        made = [client.fine_tuning.jobs.create(model=MODEL, training_file=training.id).id for _ in range(3)]
        client.fine_tuning.jobs.retrieve(made[0])
        client.fine_tuning.jobs.retrieve(made[0])  # finished at OpenAI
    assert jobs.import_openai_jobs(session, settings, **options(fake)) == 3
    assert jobs.import_openai_jobs(session, settings, **options(fake)) == 0
    imported = {j.provider_job_id: j for j in session.exec(select(Job))}
    assert imported[made[0]].status == JobStatus.succeeded and imported[made[0]].fine_tuned_model
    assert imported[made[1]].status == JobStatus.running and imported[made[1]].heartbeat_at is None
    assert claim_next(engine, "w", ["openai"]) is None  # followed through takeover, never started anew


def test_a_file_openai_rejects_fails_the_job_with_openais_own_message(session, settings, engine, fake):
    from app.datasets.snapshots import write_snapshot

    snap = write_snapshot(session, settings, b'{"messages": []}\n' * 3)
    session.commit()
    jobs.create_job(session, settings, jobs.JobRequest(training_snapshot=snap.id, provider="openai", model=MODEL))
    job = run_one(settings, engine, fake)
    assert job.status == JobStatus.failed and job.error["code"] == "invalid_file"
    assert job.error["message"] == (
        "OpenAI rejected the training file: Training file has 3 example(s), but must have at least 10 examples"
    )
