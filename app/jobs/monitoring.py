"""Live monitoring: a job's summary, its metrics series, event batches for the SSE stream, and the waiting seam
(EventFeed, one per app)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from app.jobs import naming
from app.jobs.event_notify import EventNotifier
from app.tables import Dataset, Job, JobEvent, JobStatus

# SQLite has no change notifications, so streams poll; one shared probe per job per interval makes 0.1 s cheap.
POLL_SECONDS = 0.1
BATCH_LIMIT = 500
METRIC_KEYS = (
    "train_loss",
    "valid_loss",
    "full_valid_loss",
    "train_mean_token_accuracy",
    "valid_mean_token_accuracy",
    "full_valid_mean_token_accuracy",
    # DPO jobs (app/engine/dpo_run.py): the preference chart's series
    "train_reward_margin",
    "valid_reward_margin",
    "train_reward_accuracy",
    "valid_reward_accuracy",
)


@dataclass
class JobSummary:
    """What the job page's summary shows: status, progress, tokens, times, estimate vs actual."""

    job: Job
    status: JobStatus
    step: int | None = None
    total_steps: int | None = None
    elapsed_seconds: float | None = None
    estimated_finish: datetime | None = None
    dataset_name: str | None = None
    validation_dataset_name: str | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)
    tokens_planned: int | None = None
    tokens_so_far: int | None = None
    latest: dict[str, Any] = field(default_factory=dict)  # the newest metrics point (losses, accuracy)
    model_name: str | None = None  # the tuned model's friendly name (app.jobs.naming)

    @property
    def elapsed_text(self) -> str:
        """Elapsed time as h:mm:ss."""
        total = int(self.elapsed_seconds or 0)
        return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"

    @property
    def percent(self) -> int:
        """Progress as a whole percentage (0 before the first step; 100 once succeeded)."""
        if self.status == JobStatus.succeeded:
            return 100
        if not self.step or not self.total_steps:
            return 0
        return max(0, min(100, int(100 * self.step / self.total_steps)))


@dataclass
class EventBatch:
    """New events after a sequence number, plus the job's status at the time of reading."""

    events: list[JobEvent]
    status: JobStatus
    last_seq: int


def _aware(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def metric_point(event: JobEvent) -> dict[str, Any] | None:
    """A metrics event as a chart point {seq, step, total_steps, train_loss, …}; None for other events."""
    data = event.data if isinstance(event.data, dict) else None
    if event.type != "metrics" or not data or "step" not in data:
        return None
    point: dict[str, Any] = {"seq": event.seq, "step": data.get("step"), "total_steps": data.get("total_steps")}
    for key in METRIC_KEYS:
        value = data.get(key)
        if isinstance(value, int | float):
            point[key] = value
    return point


def metric_series(session: Session, job_id: str) -> list[dict[str, Any]]:
    """Every metrics point of a job, in step order."""
    rows = session.exec(
        select(JobEvent)
        .where(col(JobEvent.job_id) == job_id, col(JobEvent.type) == "metrics")
        .order_by(col(JobEvent.seq))
    ).all()
    return [p for p in (metric_point(e) for e in rows) if p is not None]


def job_summary(session: Session, job: Job, now: datetime | None = None) -> JobSummary:
    """The summary of a job: latest step of N, elapsed time, projected finish and estimate vs actual."""
    now = now or datetime.now(UTC)
    status = job.status
    summary = JobSummary(job=job, status=status)
    last = session.exec(
        select(JobEvent)
        .where(col(JobEvent.job_id) == job.id, col(JobEvent.type) == "metrics")
        .order_by(col(JobEvent.seq).desc())
    ).first()
    point = metric_point(last) if last is not None else None
    if point:
        summary.step, summary.total_steps = point.get("step"), point.get("total_steps")
        summary.latest = point
    summary.estimated_finish = _aware(job.estimated_finish)
    started, finished = _aware(job.started_at), _aware(job.finished_at)
    if started:
        elapsed = max(0.0, ((finished or now) - started).total_seconds())
        summary.elapsed_seconds = elapsed
        if summary.estimated_finish is None and not status.is_terminal and summary.step and summary.total_steps:
            # Linear projection from the steps done so far, until the worker reports its own estimate.
            per_step = elapsed / summary.step
            finish_at = started.timestamp() + per_step * summary.total_steps
            summary.estimated_finish = datetime.fromtimestamp(finish_at, UTC)
    summary.tokens_planned = _planned_tokens(session, job)
    if job.trained_tokens is None and summary.tokens_planned and summary.step and summary.total_steps:
        # Every step trains an equal share of the epochs' tokens, so the running count follows the steps.
        share = min(1.0, summary.step / summary.total_steps)
        summary.tokens_so_far = round(summary.tokens_planned * share)
    for attr, target in (("dataset_id", "dataset_name"), ("validation_dataset_id", "validation_dataset_name")):
        ds_id = getattr(job, attr)
        if ds_id is not None:
            dataset = session.get(Dataset, ds_id)
            setattr(summary, target, dataset.name if dataset else f"#{ds_id} (deleted)")
    if job.fine_tuned_model:
        summary.model_name = naming.model_names(session, [job.fine_tuned_model]).get(job.fine_tuned_model)
    if status.is_terminal:
        summary.comparison = estimate_vs_actual(job, summary.elapsed_seconds)
    return summary


def _planned_tokens(session: Session, job: Job) -> int | None:
    """The tokens the job will train: the engine's own count (its "Training file has…" event), else the estimate."""
    rows = session.exec(
        select(JobEvent)
        .where(col(JobEvent.job_id) == job.id, col(JobEvent.type) == "message", col(JobEvent.data).is_not(None))
        .order_by(col(JobEvent.seq))
        .limit(20)
    ).all()
    for event in rows:
        if isinstance(event.data, dict) and isinstance(event.data.get("trained_tokens"), int):
            return event.data["trained_tokens"]
    est = job.estimate if isinstance(job.estimate, dict) else {}
    planned = est.get("charged_tokens")
    return planned if isinstance(planned, int) else None


def estimate_vs_actual(job: Job, elapsed_seconds: float | None) -> list[dict[str, Any]]:
    """Rows (what, estimated, actual) comparing the launch estimate with what the job used."""
    est = job.estimate if isinstance(job.estimate, dict) else {}
    actual_cost = (job.metadata_ or {}).get("cost_usd") if isinstance(job.metadata_, dict) else None
    rows = [
        {
            "what": "Trained tokens",
            "unit": "tokens",
            "estimated": est.get("charged_tokens"),
            "actual": job.trained_tokens,
        },
        {
            "what": "Time",
            "unit": "s",
            "estimated": _estimated_seconds(job, est),
            "actual": round(elapsed_seconds) if elapsed_seconds is not None else None,
        },
        {"what": "Cost", "unit": "USD", "estimated": est.get("cost_usd") or est.get("cost"), "actual": actual_cost},
    ]
    return [r for r in rows if r["estimated"] is not None or r["actual"] is not None]


def _estimated_seconds(job: Job, est: dict[str, Any]) -> float | None:
    # The local engine's estimate has a CPU and a GPU figure; the job's metadata says which device ran it.
    device = (job.metadata_ or {}).get("device") if isinstance(job.metadata_, dict) else None
    if device == "cuda" and est.get("training_seconds_gpu") is not None:
        return est["training_seconds_gpu"]
    return est.get("training_seconds_cpu")


def checkpoint_metric_keys(checkpoints: list[Any]) -> list[str]:
    """The metric columns of a checkpoint table: known metrics in their usual order, then any others."""
    seen: list[str] = []
    for cp in checkpoints:
        for key in cp.metrics or {}:
            if key not in seen:
                seen.append(key)
    known = [k for k in ("step", *METRIC_KEYS) if k in seen and k != "step"]
    return known + [k for k in seen if k not in known and k != "step"]


def recent_events(session: Session, job_id: str, limit: int = 500) -> list[JobEvent]:
    """The newest `limit` events of a job, oldest first (what the page shows before the stream takes over)."""
    rows = session.exec(
        select(JobEvent).where(col(JobEvent.job_id) == job_id).order_by(col(JobEvent.seq).desc()).limit(limit)
    ).all()
    return list(reversed(rows))


def current_status(engine: Engine, job_id: str) -> JobStatus | None:
    """The job's status right now, or None when it does not exist."""
    with Session(engine) as session:
        job = session.get(Job, job_id)
        return job.status if job else None


def read_batch(engine: Engine, job_id: str, after_seq: int) -> EventBatch | None:
    """Events of a job after `after_seq` (at most BATCH_LIMIT) and its status; None when the job is gone."""
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        status = job.status
        events = session.exec(
            select(JobEvent)
            .where(col(JobEvent.job_id) == job_id, col(JobEvent.seq) > after_seq)
            .order_by(col(JobEvent.seq))
            .limit(BATCH_LIMIT)
        ).all()
        session.expunge_all()
    last = events[-1].seq if events else None
    return EventBatch(events=list(events), status=status, last_seq=after_seq if last is None else last)


def _probe(engine: Engine, job_id: str) -> tuple[int, JobStatus] | None:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        return last_seq(session, job_id), job.status


class _Shared:
    """Answers shared by every stream of one app for POLL_SECONDS, so 100 watchers cost one query, not 100."""

    def __init__(self) -> None:
        self.values: dict[tuple, tuple[float, Any]] = {}
        self.locks: dict[tuple, anyio.Lock] = {}

    async def get(self, key: tuple, compute: Callable[..., Any], *args: Any, newer_than: float = 0.0) -> Any:
        """compute(*args), or its answer from the last POLL_SECONDS if that was computed after `newer_than`."""
        hit = self.values.get(key)
        if hit and time.monotonic() - hit[0] < POLL_SECONDS and hit[0] >= newer_than:
            return hit[1]
        lock = self.locks.setdefault(key, anyio.Lock())
        async with lock:  # the first waiter queries; the others reuse its answer
            hit = self.values.get(key)
            if hit and time.monotonic() - hit[0] < POLL_SECONDS and hit[0] >= newer_than:
                return hit[1]
            value = await anyio.to_thread.run_sync(compute, *args)
            now = time.monotonic()
            self.values[key] = (now, value)
            if len(self.values) > 1000:
                for stale in [k for k, (t, _) in self.values.items() if now - t > POLL_SECONDS]:
                    self.values.pop(stale, None)
                    self.locks.pop(stale, None)
            return value


class EventFeed:
    """The one place that waits for a job's new events, for every live stream of one app (built by its factory).

    On SQLite it polls every POLL_SECONDS, one cheap query per job shared by all of the app's streams (the waiting
    itself stays on the event loop, so watchers hold no threads); on PostgreSQL it sleeps until LISTEN/NOTIFY says
    the job has news (app/jobs/event_notify.py).
    """

    def __init__(self, engine: Engine, notifier: EventNotifier):
        self.engine = engine
        self.notifier = notifier
        self._shared = _Shared()

    async def wait_for_events(
        self, job_id: str, after_seq: int, timeout: float, known_status: JobStatus | None = None
    ) -> EventBatch | None:
        """Wait until the job has events after `after_seq`, its status differs from `known_status`, or it is
        terminal, or `timeout` passes; then its new events and status (None when the job is gone)."""
        deadline = time.monotonic() + timeout
        woken_at = 0.0
        while True:
            probe = await self._shared.get(("probe", job_id), _probe, self.engine, job_id, newer_than=woken_at)
            if probe is None:
                return None
            newest, status = probe
            if (
                newest > after_seq
                or status.is_terminal
                or time.monotonic() >= deadline
                or (known_status is not None and status != known_status)
            ):
                return await self._shared.get(
                    ("batch", job_id, after_seq), read_batch, self.engine, job_id, after_seq, newer_than=woken_at
                )
            # SQLite: a short sleep (polling). PostgreSQL: until NOTIFY announces this job's news; answers cached
            # before the wake-up are then too old to trust.
            await self.notifier.wait_for_new_events(job_id, after_seq, deadline - time.monotonic())
            if self.notifier.uses_notify:
                woken_at = time.monotonic()


def last_seq(session: Session, job_id: str) -> int:
    """The highest event sequence number of a job (0 when it has none)."""
    return session.exec(select(func.max(JobEvent.seq)).where(col(JobEvent.job_id) == job_id)).one() or 0


def iter_results_csv(engine: Engine, job_id: str, batch: int = 1000) -> Iterator[str]:
    """The job's metrics as OpenAI's result file (step,train_loss,train_accuracy,valid_loss,
    valid_mean_token_accuracy), streamed in chunks from its own session: a long job has many thousand rows."""
    yield "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
    query = (
        select(JobEvent)
        .where(col(JobEvent.job_id) == job_id, col(JobEvent.type) == "metrics")
        .order_by(col(JobEvent.seq))
        .execution_options(yield_per=batch)
    )
    with Session(engine) as session:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for n, event in enumerate(session.exec(query), start=1):
            p = metric_point(event)
            if p is not None:
                writer.writerow(
                    [
                        p.get("step"),
                        p.get("train_loss", ""),
                        p.get("train_mean_token_accuracy", ""),
                        p.get("valid_loss", ""),
                        p.get("valid_mean_token_accuracy", ""),
                    ]
                )
            if n % batch == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()
