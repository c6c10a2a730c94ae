"""A newly tuned local model is warmed in the server's chat engine before its first chat: the newest one only, never
while a local job trains; and the playground can ask how far a model's load has got."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.engine.chat_types import ModelRef
from app.engine.inference import ChatEngine
from app.jobs.model_catalog import resolve_model
from app.main import create_app
from app.playground.warm import Preloader, model_status
from app.tables import Job, JobStatus, TunedModel
from app.tables.common import utcnow
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401
from tests.support.tiny_jobs import tiny_worker  # noqa: F401


class RecordingEngine(ChatEngine):
    """A chat engine that records what it is asked to preload instead of loading it."""

    def __init__(self, settings):
        super().__init__(settings)
        self.asked: list[ModelRef] = []

    def preload(self, ref: ModelRef) -> None:
        self.asked.append(ref)


def succeeded_job(session: Session, name: str, minutes_ago: float = 0, provider: str = "local") -> Job:
    model_id = f"ft:{TINY}:{name}:ftjob-{name}"
    job = Job(
        model=TINY,
        provider=provider,
        status=JobStatus.succeeded,
        fine_tuned_model=model_id,
        finished_at=utcnow() - timedelta(minutes=minutes_ago),
    )
    session.add(job)
    session.commit()
    session.add(TunedModel(id=model_id, job_id=job.id, base_model=TINY, path=f"models/{name}", provider=provider))
    session.commit()
    return job


def test_the_newest_model_tuned_since_the_start_is_warmed_once(session, settings, engine):
    chat = RecordingEngine(settings)
    preloader = Preloader(settings, engine, chat)
    succeeded_job(session, "before", minutes_ago=5)  # tuned before this start: waits for its first chat
    assert preloader.run_once() is None
    succeeded_job(session, "older")
    newest = succeeded_job(session, "newest")
    assert preloader.run_once() == newest.fine_tuned_model
    assert [ref.name for ref in chat.asked] == [newest.fine_tuned_model]  # one model at most: the newest
    assert preloader.run_once() is None and len(chat.asked) == 1
    assert preloader.wait_for(newest.fine_tuned_model, timeout=0)


def test_nothing_is_warmed_while_a_local_job_trains_and_openai_models_never(session, settings, engine):
    chat = RecordingEngine(settings)
    preloader = Preloader(settings, engine, chat)
    succeeded_job(session, "remote", provider="openai")
    assert preloader.run_once() is None
    done = succeeded_job(session, "done")
    running = Job(model=TINY, status=JobStatus.running)
    session.add(running)
    session.commit()
    assert preloader.run_once() is None and chat.asked == []
    running.status = JobStatus.cancelled
    session.add(running)
    session.commit()
    assert preloader.run_once() == done.fine_tuned_model


def test_the_setting_turns_the_preloader_off(settings):
    with TestClient(create_app(settings.model_copy(update={"preload_tuned_models": False}))) as client:
        assert client.app.state.preloader is None
    with TestClient(create_app(settings)) as client:
        assert isinstance(client.app.state.preloader, Preloader)


def test_model_status_says_loaded_only_once_the_model_is_loaded(session, settings):
    with ChatEngine(settings) as chat:
        ref = resolve_model(session, settings, TINY).ref
        assert model_status(session, settings, chat, TINY).loaded is False
        chat.preload(ref)
        assert chat.is_loaded(ref) and chat.load_progress(ref) is None
        assert model_status(session, settings, chat, TINY).as_dict()["loaded"] is True


@pytest.mark.slow
def test_a_model_tuned_by_the_embedded_worker_is_loaded_before_any_chat(tiny_worker):
    settings, app = tiny_worker.settings, tiny_worker.app
    dataset = tiny_worker.dataset(n_train=12)
    done = tiny_worker.run_job(dataset_id=dataset.id, suffix="warm", seed=1, hyperparameters={"n_epochs": 1})
    assert done["status"] == "succeeded", done["error"]
    model_id = done["fine_tuned_model"]
    # No chat asked for it: the server warms it as soon as it notices the success.
    assert app.state.preloader.wait_for(model_id, timeout=120)
    with Session(app.state.engine) as session:
        ref = resolve_model(session, settings, model_id).ref
    assert app.state.chat_engine.is_loaded(ref)
