"""The claim loop: take a queued job (or a stale one), run it through its provider, record the outcome.

Which local jobs a worker takes (the `--gpu` rule): the embedded worker and workers started with `--gpu` take
local jobs at once. A worker without `--gpu` does too while no live GPU worker serves local jobs (the `workers`
table says who is alive); when one does, it takes a local job only after the job has waited
`heartbeat_timeout_seconds` in the queue, so GPU hosts get training first and a busy GPU fleet still drains.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.engine.inference import ChatEngine
from app.jobs import queue as job_queue
from app.jobs.events import last_reported_step, latest_checkpoint, record_event
from app.providers.base import JobOutcome, JobSpec, Provider, ProviderError
from app.providers.registry import get_provider, provider_names
from app.tables import Job, JobStatus, Snapshot
from app.tables.common import new_id
from app.worker.context import WorkerJobContext
from app.worker.eval_lane import EvalLane

log = logging.getLogger("tuneboard.worker")


class Worker:
    """One worker: claims jobs of its providers from the shared database and runs them one at a time."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        providers: list[str] | None = None,
        gpu: bool = True,
        worker_id: str | None = None,
        provider_options: dict[str, dict[str, Any]] | None = None,
        chat_engine: ChatEngine | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.providers = providers or provider_names()
        self.gpu = gpu
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[2:10]}"
        self.provider_options = provider_options or {}
        self.shutdown = threading.Event()
        self._providers: dict[str, Provider] = {}
        # Eval runs go on a second thread (settings.worker_evals), chatting through chat_engine when given.
        self.eval_lane = EvalLane(
            settings,
            engine,
            self.worker_id,
            self.shutdown,
            chat_engine=chat_engine,
            provider_options=self.provider_options,
        )

    def provider(self, name: str) -> Provider:
        """This worker's instance of a provider (built once)."""
        if name not in self._providers:
            options = dict(self.provider_options.get(name, {}))
            options.setdefault("engine", self.engine)
            if name == "local":
                options.setdefault("device", "auto" if self.gpu else "cpu")
            self._providers[name] = get_provider(name, self.settings, **options)
        return self._providers[name]

    def run(self, once: bool = False) -> None:
        """Loop until shutdown is set (or, with once, until there is nothing left to do: jobs, then eval runs)."""
        stopped = threading.Event()
        presence = threading.Thread(target=self._announce, args=(stopped,), name="worker-presence", daemon=True)
        presence.start()
        lane: threading.Thread | None = None
        if self.settings.worker_evals and not once:
            lane = threading.Thread(target=self.eval_lane.run, name="worker-evals", daemon=True)
            lane.start()
        try:
            while not self.shutdown.is_set():
                try:
                    worked = self.step()
                except Exception:  # keep serving other jobs; the failing one was already recorded
                    log.exception("worker step failed")
                    worked = False
                if once and not worked:
                    break
                if not worked:
                    self.shutdown.wait(self.settings.worker_poll_seconds)
            if once and self.settings.worker_evals:
                self.eval_lane.run(once=True)  # the runs of the checkpoints just written, among others
        finally:
            if lane is not None:
                self.shutdown.set()  # run() returning means the worker stops: the lane hands its run back
                lane.join(timeout=30)
            stopped.set()
            presence.join(timeout=10)
            for provider in self._providers.values():
                provider.close()  # the OpenAI client's connections; a later run() opens them again

    def _announce(self, stopped: threading.Event) -> None:
        # Its own thread, so that a worker busy with a long training job still shows as alive.
        registered = False
        while not stopped.is_set():
            try:
                if not registered or not job_queue.touch_worker(self.engine, self.worker_id):
                    job_queue.register_worker(
                        self.engine, self.worker_id, self.providers, self.gpu, socket.gethostname()
                    )
                registered = True
            except Exception:  # a busy or restarting database: try again next round
                log.exception("could not announce worker %s", self.worker_id)
            stopped.wait(self.settings.heartbeat_seconds)
        try:
            job_queue.unregister_worker(self.engine, self.worker_id)
        except Exception:  # it goes stale by itself after heartbeat_timeout_seconds
            log.exception("could not unregister worker %s", self.worker_id)

    def step(self) -> bool:
        """Take over one stale job, or claim one queued job, and run it. Whether there was one."""
        job_id = job_queue.take_over_stale(
            self.engine, self.worker_id, self.providers, self.settings.heartbeat_timeout_seconds
        )
        if job_id is None:
            patient: tuple[str, ...] = ()
            if (
                not self.gpu
                and "local" in self.providers
                and job_queue.gpu_worker_serves(self.engine, "local", self.settings.heartbeat_timeout_seconds)
            ):
                patient = ("local",)
            job_id = job_queue.claim_next(
                self.engine,
                self.worker_id,
                self.providers,
                patient=patient,
                patience_seconds=self.settings.heartbeat_timeout_seconds,
            )
        if job_id is None:
            return False
        self.run_job(job_id)
        return True

    def run_job(self, job_id: str) -> None:
        """Run a job this worker has claimed, until it ends or the worker stops."""
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.get_one(Job, job_id)  # claimed by this worker a moment ago
            spec = self._spec(session, job)
            attempts, provider_name = job.attempts, job.provider
        provider = self.provider(provider_name)
        if attempts > job_queue.MAX_ATTEMPTS or (
            attempts > 1 and not spec.provider_job_id and not provider.can_restart
        ):
            job_queue.finish(
                self.engine,
                job_id,
                self.worker_id,
                JobStatus.failed,
                error={
                    "code": "interrupted",
                    "param": None,
                    "message": "The job was interrupted (its worker stopped) and could not be resumed. Run it again.",
                },
            )
            return
        if attempts > 1 or spec.resume_from:
            where = f" from step {spec.resume_from['step']}" if spec.resume_from else ""
            record_event(self.engine, job_id, f"Resuming the job{where} (attempt {attempts}).")
        # A recovered remote job re-polls its events from the start: stored events are de-duplicated by id.
        with WorkerJobContext(self.settings, self.engine, self.worker_id, spec, self.shutdown) as ctx:
            try:
                provider.run(ctx)
            except JobOutcome as outcome:
                job_queue.finish(
                    self.engine,
                    job_id,
                    self.worker_id,
                    outcome.status,
                    error=outcome.error,
                    fine_tuned_model=outcome.fine_tuned_model,
                    trained_tokens=outcome.trained_tokens,
                    result_files=outcome.result_files,
                    model_path=ctx.relative(outcome.model_path),
                )
                return
            except ProviderError as exc:
                job_queue.finish(
                    self.engine,
                    job_id,
                    self.worker_id,
                    JobStatus.failed,
                    error={"code": exc.code, "message": exc.message, "param": exc.param},
                )
                return
            except Exception as exc:
                log.exception("job %s crashed", job_id)
                job_queue.finish(
                    self.engine,
                    job_id,
                    self.worker_id,
                    JobStatus.failed,
                    error={
                        "code": "internal_error",
                        "param": None,
                        "message": f"Tuneboard failed to run the job: {exc}",
                    },
                )
                return
            if ctx.lost:
                return
        # The provider stopped without an outcome: the worker is shutting down. Put the job back.
        job_queue.release(self.engine, job_id, self.worker_id)

    def _spec(self, session: Session, job: Job) -> JobSpec:
        train = session.get(Snapshot, job.training_snapshot_id) if job.training_snapshot_id else None
        valid = session.get(Snapshot, job.validation_snapshot_id) if job.validation_snapshot_id else None
        resume = None
        if job.provider == "local":
            cp = latest_checkpoint(session, job.id)
            if cp is not None and cp.path:
                # reported_step: an earlier attempt may have run past the checkpoint; the trainer runs those steps
                # again without reporting them twice.
                resume = {
                    "checkpoint_dir": str(self.settings.data_dir / cp.path),
                    "step": cp.step_number,
                    "reported_step": last_reported_step(session, job.id),
                }
        method = job.method or {}
        return JobSpec(
            job_id=job.id,
            model=job.model,
            hyperparameters=dict(job.hyperparameters or {}),
            suffix=job.suffix,
            seed=job.seed,
            metadata=job.metadata_,
            train_file=str(self.settings.data_dir / train.path) if train else "",
            validation_file=str(self.settings.data_dir / valid.path) if valid else None,
            output_dir=str(self.settings.storage_path("jobs", job.id)),
            provider_job_id=job.provider_job_id,
            method_type=method.get("type", "supervised"),
            resume_from=resume,
        )
