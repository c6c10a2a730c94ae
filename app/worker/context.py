"""The context a provider reports through while the worker runs its job: each call is a short transaction."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.errors import DomainError
from app.evals.checkpoints import queue_checkpoint_eval
from app.jobs import queue as job_queue
from app.jobs.events import record_checkpoint, record_event
from app.providers.base import JobSpec
from app.tables import Job

log = logging.getLogger("tuneboard.worker")


class WorkerJobContext:
    """Implements app.providers.base.JobContext for one claimed job, with a heartbeat thread beside it."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        worker_id: str,
        spec: JobSpec,
        shutdown: threading.Event,
        last_event_id: str | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.worker_id = worker_id
        self.spec = spec
        self.last_event_id = last_event_id
        self._shutdown = shutdown
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._wake = threading.Event()  # set by any reason to stop waiting
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{spec.job_id}", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> WorkerJobContext:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        # Cancel is checked more often than the heartbeat is written so that it is honoured within 5 s.
        check = min(self.settings.heartbeat_seconds, 0.5)
        next_beat = 0.0
        while not self._done.is_set():
            ours, cancel = True, False
            try:
                if time.monotonic() >= next_beat:
                    ours, cancel = job_queue.heartbeat(self.engine, self.spec.job_id, self.worker_id)
                    next_beat = time.monotonic() + self.settings.heartbeat_seconds
                else:
                    cancel = self._read_cancel()
            except Exception:  # a busy database must not kill the heartbeat: the next round tries again
                log.exception("heartbeat of %s failed", self.spec.job_id)
            if not ours:
                log.warning("worker %s lost job %s to another worker", self.worker_id, self.spec.job_id)
                self._lost.set()
            if cancel:
                self._cancel.set()
            if not ours or cancel or self._shutdown.is_set():
                self._wake.set()
            self._done.wait(check)

    def _read_cancel(self) -> bool:
        with Session(self.engine) as session:
            job = session.get(Job, self.spec.job_id)
            return bool(job and job.cancel_requested)

    # -- JobContext ------------------------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        """Whether another worker took the job over (this one must stop without writing)."""
        return self._lost.is_set()

    def cancel_requested(self) -> bool:
        """Whether someone asked to cancel the job."""
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        """Whether the provider should stop now: cancel, lost job, or worker shutdown."""
        return self._cancel.is_set() or self._lost.is_set() or self._shutdown.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, waking early to stop; True when the job should stop (lost or shutting down)."""
        self._wake.wait(seconds)
        if self._cancel.is_set() and not (self._lost.is_set() or self._shutdown.is_set()):
            self._wake.clear()  # cancel is handled by the provider; keep polling until it confirms
        return self._lost.is_set() or self._shutdown.is_set()

    def event(
        self,
        message: str,
        *,
        level: str = "info",
        type: str = "message",
        data: Any = None,
        event_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        """Record one event (de-duplicated by event_id)."""
        if self.lost:
            return
        record_event(
            self.engine,
            self.spec.job_id,
            message,
            level=level,
            type=type,
            data=data,
            event_id=event_id,
            created_at=created_at,
        )
        if event_id:
            self.last_event_id = event_id

    def checkpoint(
        self,
        step: int,
        model_name: str,
        metrics: dict | None = None,
        path: str | None = None,
        checkpoint_id: str | None = None,
    ) -> None:
        """Record a checkpoint (path stored relative to data_dir when inside it); queue its eval run when the job
        has an eval attached (once per checkpoint: a resumed job reports its checkpoints again)."""
        if self.lost:
            return
        record_checkpoint(self.engine, self.spec.job_id, step, model_name, metrics, self.relative(path), checkpoint_id)
        self._evaluate(step, checkpoint_id)

    def _evaluate(self, step: int, checkpoint_id: str | None) -> None:
        # Evaluation must never stop training: a failure here is told as an event and training goes on.
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                run = queue_checkpoint_eval(
                    session, self.settings, self.spec.job_id, step=step, checkpoint_id=checkpoint_id
                )
        except DomainError as exc:
            self.event(f"The checkpoint at step {step} could not be queued for evaluation: {exc.message}", level="warn")
            return
        except Exception:
            log.exception("queueing the eval of %s step %s failed", self.spec.job_id, step)
            return
        if run is not None:
            self.event(f"Checkpoint at step {step} queued for evaluation ({run.n_items} items, run {run.id}).")

    def set_provider_job_id(self, provider_job_id: str) -> None:
        """Remember the provider's job id, so that a takeover re-polls instead of starting anew."""
        self.spec.provider_job_id = provider_job_id
        self.update(provider_job_id=provider_job_id)

    def update(self, **fields: Any) -> None:
        """Set job columns (hyperparameters, estimated_finish as unix time, trained_tokens…)."""
        if isinstance(fields.get("estimated_finish"), int | float):
            fields["estimated_finish"] = datetime.fromtimestamp(fields["estimated_finish"], UTC)
        if not self.lost and not job_queue.update_owned(self.engine, self.spec.job_id, self.worker_id, **fields):
            self._lost.set()

    def relative(self, path: str | None) -> str | None:
        """A path as stored in the database: relative to data_dir when it lies inside it."""
        if not path:
            return path
        try:
            return Path(path).resolve().relative_to(self.settings.data_dir.resolve()).as_posix()
        except ValueError:
            return path
