"""The eval lane: a second thread of a worker that runs eval runs beside its jobs, so checkpoints are evaluated while
training goes on. Same discipline as the jobs loop: stale runs are taken over first, the run in hand is heartbeated,
and at shutdown it goes back to the queue (a later attempt resumes after the items already written)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.engine import Engine

from app.config import Settings
from app.engine.inference import ChatEngine
from app.evals import queue as run_queue
from app.evals.executor import run_eval

log = logging.getLogger("tuneboard.worker")


class _Heartbeat:
    """Marks the run alive every heartbeat_seconds; `lost` is set when another worker took it (or it is gone)."""

    def __init__(self, settings: Settings, engine: Engine, run_id: str, worker_id: str):
        self.settings, self.engine, self.run_id, self.worker_id = settings, engine, run_id, worker_id
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        while not self._done.wait(self.settings.heartbeat_seconds):
            try:
                ours, _ = run_queue.heartbeat_run(self.engine, self.run_id, self.worker_id)
            except Exception:  # a busy database must not stop the heartbeat: the next round tries again
                log.exception("heartbeat of eval run %s failed", self.run_id)
                continue
            if not ours:
                log.warning("worker %s lost eval run %s", self.worker_id, self.run_id)
                self.lost.set()
                return


class EvalLane:
    """Claims eval runs and runs them one at a time until `shutdown` is set.

    chat_engine: the process's engine (the embedded worker shares the web app's, so loaded models serve both);
    without one the lane builds its own and closes it when it stops.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        worker_id: str,
        shutdown: threading.Event,
        *,
        chat_engine: ChatEngine | None = None,
        provider_options: dict[str, dict[str, Any]] | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.worker_id = worker_id
        self.shutdown = shutdown
        self.provider_options = provider_options or {}
        self._chat_engine = chat_engine
        self._own_engine: ChatEngine | None = None

    @property
    def chat_engine(self) -> ChatEngine:
        """The chat engine runs generate with (built on first use when none was given)."""
        if self._chat_engine is None:
            self._own_engine = self._chat_engine = ChatEngine(self.settings)
        return self._chat_engine

    def run(self, once: bool = False) -> None:
        """Loop until shutdown (or, with once, until no run is waiting)."""
        try:
            while not self.shutdown.is_set():
                try:
                    worked = self.step()
                except Exception:  # keep serving other runs; the failing one was already recorded
                    log.exception("eval lane step failed")
                    worked = False
                if once and not worked:
                    return
                if not worked:
                    self.shutdown.wait(self.settings.worker_poll_seconds)
        finally:
            if self._own_engine is not None:
                self._own_engine.close()
                self._own_engine = self._chat_engine = None

    def step(self) -> bool:
        """Take over one stale run, or claim a queued one, and run it. Whether there was one."""
        run_id = run_queue.take_over_stale_run(self.engine, self.worker_id, self.settings.heartbeat_timeout_seconds)
        if run_id is None:
            run_id = run_queue.claim_next_run(self.engine, self.worker_id)
        if run_id is None:
            return False
        self.run_one(run_id)
        return True

    def run_one(self, run_id: str) -> None:
        """Run a claimed run until it ends, or hand it back when the worker stops first."""
        with _Heartbeat(self.settings, self.engine, run_id, self.worker_id) as beat:
            status = run_eval(
                self.settings,
                self.engine,
                self.chat_engine,
                run_id,
                self.worker_id,
                lambda: self.shutdown.is_set() or beat.lost.is_set(),
                provider_options=self.provider_options,
            )
        if status is None and not beat.lost.is_set():
            run_queue.release_run(self.engine, run_id, self.worker_id)
