"""Local models ready before their first chat: what a load has got to (for the playground's waiting text), and the
preloader that warms the tuned model of a job that just succeeded in the app's chat engine."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.engine.inference import ChatEngine
from app.jobs.model_catalog import resolve_model
from app.tables import Job, JobStatus
from app.tables.common import utcnow

log = logging.getLogger("tuneboard.warm")


@dataclass(frozen=True)
class ModelStatus:
    """Whether a model is ready to chat, and while it loads, what the load is doing (text for people)."""

    loaded: bool
    loading: bool = False
    text: str = ""
    step: int = 0
    total: int = 0
    fraction: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "loaded": self.loaded,
            "loading": self.loading,
            "text": self.text,
            "step": self.step,
            "total": self.total,
            "fraction": self.fraction,
        }


def model_status(session: Session, settings: Settings, chat_engine: ChatEngine, model_id: str) -> ModelStatus:
    """Whether `model_id` is loaded in the app's chat engine, and how far its load has got (NotFound: no model)."""
    resolved = resolve_model(session, settings, model_id)
    if resolved.provider != "local":
        return ModelStatus(loaded=True)  # a remote model has nothing to load here
    if chat_engine.is_loaded(resolved.ref):
        return ModelStatus(loaded=True)
    progress = chat_engine.load_progress(resolved.ref)
    if progress is None:
        return ModelStatus(loaded=False)
    text = f"Loading {model_id} — {progress.phase} ({progress.step} of {progress.total})"
    return ModelStatus(False, True, text, progress.step, progress.total, progress.fraction)


def newest_tuned_model(session: Session, since: datetime) -> Job | None:
    """The newest local job that succeeded with a tuned model after `since`, or None."""
    query = (
        select(Job)
        .where(
            col(Job.provider) == "local",
            col(Job.status) == JobStatus.succeeded,
            col(Job.fine_tuned_model).is_not(None),
            col(Job.finished_at) > since,
        )
        .order_by(col(Job.finished_at).desc())
        .limit(1)
    )
    return session.exec(query).first()


def training_running(session: Session) -> bool:
    """Whether a local training job is running (a load then would take its cores)."""
    query = select(Job.id).where(col(Job.provider) == "local", col(Job.status) == JobStatus.running).limit(1)
    return session.exec(query).first() is not None


class Preloader:
    """Warms the tuned model of the newest local job that succeeded since the app started: one model at most, the
    newest, and never while a local training job runs. A thread that looks every `worker_poll_seconds`."""

    def __init__(self, settings: Settings, engine: Engine, chat_engine: ChatEngine):
        self.settings = settings
        self.engine = engine
        self.chat_engine = chat_engine
        self.since = utcnow()  # models tuned before this start wait for their first chat, as before
        self.preloaded: list[str] = []  # model ids warmed, oldest first
        self.changed = threading.Condition()  # notified after each model warmed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Preloader:
        """Start looking in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="tuneboard-preload", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop looking (a load under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, model_id: str, timeout: float) -> bool:
        """Wait until `model_id` has been warmed; False when `timeout` seconds pass first."""
        with self.changed:
            return self.changed.wait_for(lambda: model_id in self.preloaded, timeout)

    def run_once(self) -> str | None:
        """Warm the newest newly tuned model if the cores are free; the id warmed, or None."""
        with Session(self.engine) as session:
            job = newest_tuned_model(session, self.since)
            if job is None or training_running(session):
                return None  # a running job: try again once it ends (its own model may then be the newest)
            assert job.fine_tuned_model is not None and job.finished_at is not None  # the query asked for both
            model_id, finished = job.fine_tuned_model, job.finished_at
            resolved = resolve_model(session, self.settings, model_id)
        self.since = finished
        self.chat_engine.preload(resolved.ref)
        with self.changed:
            self.preloaded.append(model_id)
            self.changed.notify_all()
        log.info("warmed %s for its first chat", model_id)
        return model_id

    def _run(self) -> None:
        while not self._stop.wait(self.settings.worker_poll_seconds):
            try:
                self.run_once()
            except Exception:  # a model that fails to load is reported by its first chat, as before
                log.exception("warming a tuned model failed")
                self._skip_newest()

    def _skip_newest(self) -> None:
        with Session(self.engine) as session:
            job = newest_tuned_model(session, self.since)
        if job is not None and job.finished_at is not None:
            self.since = job.finished_at  # not tried again and again
