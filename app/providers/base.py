"""The provider seam: one abstract base class every fine-tuning backend implements (local engine, OpenAI).

A provider knows nothing of the database. The worker hands it a `JobContext` (app/worker/context.py) through
which it reports events, checkpoints and the outcome; the context writes them in short transactions.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from app.errors import Invalid, Upstream
from app.tables import JobStatus

#: The hyperparameters every provider accepts, in the order the job form shows them (the one definition).
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")
_LIMITS: dict[str, tuple[type, float, float]] = {
    "n_epochs": (int, 1, 50),
    "batch_size": (int, 1, 256),
    "learning_rate_multiplier": (float, 1e-6, 100.0),
    "lora_rank": (int, 1, 512),
    "beta": (float, 1e-6, 2.0),
    "sft_weight": (float, 0.0, 10.0),
}
SUPERVISED, DPO = "supervised", "dpo"
#: What a DPO job accepts besides HYPERPARAMETERS (OpenAI's `beta`; the local engine adds `sft_weight`).
DPO_HYPERPARAMETERS = ("beta",)


def fine_tuned_model_name(base: str, suffix: str | None, job_id: str, step: int | None = None) -> str:
    """`ft:<base>:<suffix>:<job id>`, with `:ckpt-step-<k>` for a checkpoint."""
    name = f"ft:{base}:{suffix or 'tuneboard'}:{job_id}"
    return f"{name}:ckpt-step-{step}" if step is not None else name


@dataclass
class JobSpec:
    """What a provider needs to run one job: plain data copied out of the Job row."""

    job_id: str
    model: str
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int | None
    metadata: dict[str, Any] | None
    train_file: str  # absolute path of the training snapshot
    validation_file: str | None
    output_dir: str
    provider_job_id: str | None = None
    method_type: str = "supervised"
    training_file_id: str | None = None  # provider-side file ids, when already uploaded
    validation_file_id: str | None = None
    resume_from: dict[str, Any] | None = None  # {"checkpoint_dir", "step"} for the local engine


@dataclass
class RemoteStatus:
    """A provider job's state as the provider reports it (OpenAI's job object, reduced)."""

    status: JobStatus
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    result_files: list[str] = field(default_factory=list)
    estimated_finish: int | None = None


@dataclass
class RemoteEvent:
    """One provider event; `id` de-duplicates it when polled again."""

    id: str
    created_at: int
    level: str
    message: str
    type: str = "message"
    data: Any = None


@dataclass
class RemoteCheckpoint:
    """One provider checkpoint."""

    id: str
    step_number: int
    fine_tuned_model_checkpoint: str
    metrics: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    created_at: int | None = None


class JobContext(Protocol):
    """How a running provider reports. Every call is one short database transaction (see app/worker/context.py)."""

    spec: JobSpec

    def event(
        self,
        message: str,
        *,
        level: str = "info",
        type: str = "message",
        data: Any = None,
        event_id: str | None = None,
        created_at: int | None = None,
    ) -> None: ...
    def checkpoint(
        self,
        step: int,
        model_name: str,
        metrics: dict | None = None,
        path: str | None = None,
        checkpoint_id: str | None = None,
    ) -> None: ...
    def set_provider_job_id(self, provider_job_id: str) -> None: ...
    def update(self, **fields: Any) -> None: ...
    def should_stop(self) -> bool: ...
    def cancel_requested(self) -> bool: ...
    def wait(self, seconds: float) -> bool: ...


class JobOutcome(Exception):
    """Raised by a provider to end a job: status plus OpenAI-shaped error and result fields."""

    def __init__(
        self,
        status: JobStatus | str,
        *,
        error: dict | None = None,
        fine_tuned_model: str | None = None,
        trained_tokens: int | None = None,
        result_files: list[str] | None = None,
        model_path: str | None = None,
    ):
        super().__init__(status)
        self.model_path = model_path
        self.status = JobStatus(status)  # refuses a status that does not exist
        self.error = error
        self.fine_tuned_model = fine_tuned_model
        self.trained_tokens = trained_tokens
        self.result_files = result_files or []


class ProviderError(Upstream):
    """A refusal or failure from a provider, worded for people; `code` is stable, `retryable` says try later.

    An Upstream domain error: a web request that meets one answers 502 (503 when retryable) with this message.
    """

    def __init__(
        self, message: str, *, code: str = "provider_error", retryable: bool = False, param: str | None = None
    ):
        super().__init__(message, code=code, param=param, retryable=retryable)


def normalize_hyperparameters(values: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Each hyperparameter as "auto" or a number within its range; unknown names are refused."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key not in allowed:
            raise Invalid(
                f"Unknown hyperparameter {key!r}; this provider accepts {', '.join(allowed)}.",
                param=f"hyperparameters.{key}",
            )
        if value is None or value == "auto":
            out[key] = "auto"
            continue
        kind, low, high = _LIMITS[key]
        try:
            number = kind(value) if not isinstance(value, bool) else None
            if number is not None and kind is int and float(value) != number:
                number = None  # 2.5 epochs: not an integer
        except (TypeError, ValueError):
            number = None
        except OverflowError:
            # JSON's 1e400 is infinite, and int() of it overflows, as float() of a 400-digit integer does: both are
            # far outside every range.
            number = math.inf
        if number is None:
            raise Invalid(
                f'{key} must be "auto" or a{"n integer" if kind is int else " number"}, not {value!r:.80}.',
                param=f"hyperparameters.{key}",
            )
        if not low <= number <= high:
            raise Invalid(
                f"{key} must be between {low:g} and {high:g}; got {number:g}.", param=f"hyperparameters.{key}"
            )
        out[key] = number
    for key in allowed:
        out.setdefault(key, "auto")
    return out


# A remote job has checkpoints to list only while it runs and once it succeeded.
_HAS_CHECKPOINTS = (JobStatus.running, JobStatus.succeeded)


class Provider(ABC):
    """A fine-tuning backend. Subclasses implement the operations; `run` drives one job to a terminal state."""

    name: str = ""
    #: Hyperparameters this provider accepts.
    hyperparameter_names: tuple[str, ...] = HYPERPARAMETERS
    #: Fine-tuning methods this provider runs (OpenAI's `method.type`).
    methods: tuple[str, ...] = (SUPERVISED,)
    #: Hyperparameters a DPO job accepts besides hyperparameter_names.
    dpo_hyperparameter_names: tuple[str, ...] = DPO_HYPERPARAMETERS
    #: How often run() polls a remote job.
    poll_seconds: float = 5.0
    #: Whether a job interrupted before the provider gave it an id may simply be started again.
    can_restart: bool = True

    def __init__(self, settings: Any, **options: Any):
        self.settings = settings
        self.options = options

    def close(self) -> None:  # noqa: B027 (most providers hold nothing open: doing nothing is the default)
        """Release what the provider holds open (an SDK client's connections); it may be used again after."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check_parameters(
        self, model: str, hyperparameters: dict[str, Any] | None, method_type: str = "supervised"
    ) -> dict[str, Any]:
        """Validate a launch's model and hyperparameters; return them normalised. Raises Invalid."""
        if method_type not in self.methods:
            raise Invalid(
                f"The {self.name} provider supports {' and '.join(self.methods)} fine-tuning, not {method_type!r}.",
                param="method.type",
            )
        extra = self.dpo_hyperparameter_names if method_type == DPO else ()
        return normalize_hyperparameters(hyperparameters, (*self.hyperparameter_names, *extra))

    @abstractmethod
    def list_base_models(self) -> list[str]:
        """Names of the base models this provider can fine-tune."""

    @abstractmethod
    def start(self, ctx: JobContext) -> str:
        """Start the job at the provider; return the provider's job id."""

    @abstractmethod
    def poll(self, provider_job_id: str, after_event: str | None) -> tuple[RemoteStatus, list[RemoteEvent]]:
        """The job's status and its events newer than the event id `after_event`, oldest first."""

    @abstractmethod
    def list_checkpoints(self, provider_job_id: str) -> list[RemoteCheckpoint]:
        """The job's checkpoints."""

    @abstractmethod
    def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to cancel the job."""

    @abstractmethod
    def delete_model(self, model_id: str) -> None:
        """Delete a tuned model at the provider."""

    @abstractmethod
    def stream_chat(self, model: Any, messages: list[dict], params: Any) -> Iterator[Any]:
        """Chat with a model, yielding `app.engine.chat_types.ChatChunk`-shaped chunks as they come."""

    def run(self, ctx: JobContext) -> None:
        """Drive a job until it ends: start it (unless a recovered job already has a provider id), then poll.

        Idempotent: a worker that takes over a job calls run() again and it re-polls instead of starting anew.
        Ends by raising JobOutcome; returns None only when the worker asked it to stop (lost lease, shutdown).
        """
        provider_job_id = ctx.spec.provider_job_id
        if not provider_job_id:
            provider_job_id = self.start(ctx)
            ctx.set_provider_job_id(provider_job_id)
        last_event: str | None = getattr(ctx, "last_event_id", None)
        cancel_sent = False
        seen_checkpoints: set[str] = set()
        while True:
            if ctx.cancel_requested() and not cancel_sent:
                self.cancel(provider_job_id)
                cancel_sent = True
                ctx.event("Cancellation requested; waiting for the provider to confirm.")
            try:
                status, events = self.poll(provider_job_id, last_event)
                for ev in events:
                    ctx.event(
                        ev.message, level=ev.level, type=ev.type, data=ev.data, event_id=ev.id, created_at=ev.created_at
                    )
                    last_event = ev.id
                if status.status in _HAS_CHECKPOINTS or status.fine_tuned_model:
                    checkpoints = self.list_checkpoints(provider_job_id)
            except ProviderError as exc:
                # Any call of a poll round may meet an outage: the whole round is retried (events and checkpoints
                # are de-duplicated by id, so nothing is recorded twice).
                if not exc.retryable:
                    raise
                ctx.event(f"{exc.message} Retrying shortly.", level="warn")
                if ctx.wait(self.poll_seconds):
                    return
                continue
            if status.status in _HAS_CHECKPOINTS or status.fine_tuned_model:
                for cp in checkpoints:
                    if cp.id not in seen_checkpoints:
                        seen_checkpoints.add(cp.id)
                        ctx.checkpoint(cp.step_number, cp.fine_tuned_model_checkpoint, cp.metrics, cp.path, cp.id)
            fields = {
                k: v
                for k, v in (("hyperparameters", status.hyperparameters), ("estimated_finish", status.estimated_finish))
                if v
            }
            if fields:
                ctx.update(**fields)
            if status.status.is_terminal:
                raise JobOutcome(
                    status.status,
                    error=status.error,
                    fine_tuned_model=status.fine_tuned_model,
                    trained_tokens=status.trained_tokens,
                    result_files=status.result_files,
                )
            if ctx.wait(self.poll_seconds):
                return
