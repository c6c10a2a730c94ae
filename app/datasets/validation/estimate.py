"""Default epochs and cost by the OpenAI cookbook's rule; tokens, steps and training time for local models.

A local job trains every token of each example (cut at the engine's limit) once per epoch: that is the engine's
`trained_tokens`, and the estimate's `charged_tokens`. Its time follows a `Pace` (pace.py): fixed costs, a cost
per optimizer step, and tokens per second, for the device the job will run on.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from app.datasets.validation.modeltable import ModelInfo
from app.engine.data import DataError, resolve_hyperparameters, steps_per_epoch

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
EVALS_PER_JOB = 20  # the engine evaluates a validation subset every total_steps // 20 steps (training_run)
EVAL_SUBSET = 16  # examples in that subset; the whole validation file is evaluated at each epoch's end
FORWARD_SHARE = 3  # a forward pass costs about a third of a training step's forward + backward per token


def default_epochs(n_examples: int) -> int:
    """The cookbook's default: 3 epochs, raised for small datasets and lowered for very large ones."""
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class Pace:
    """How fast local training runs on one device, and where those figures come from."""

    device: str  # "cpu" | "cuda"
    tokens_per_second: float
    seconds_per_step: float = 0.0
    fixed_seconds: float = 0.0
    scale: float = 1.0  # measured / predicted time over this machine's finished jobs (1.0: none yet)
    n_jobs: int = 0  # finished jobs the scale comes from

    def seconds(self, tokens: int, steps: int, eval_tokens: int = 0) -> float:
        """Wall-clock seconds of a job: start and model load, its steps, the tokens trained and evaluated."""
        work = tokens / self.tokens_per_second + eval_tokens / (FORWARD_SHARE * self.tokens_per_second)
        return self.scale * (self.fixed_seconds + steps * self.seconds_per_step + work)

    @property
    def device_words(self) -> str:
        """The device as people say it: "this machine's CPU" or "this machine's GPU"."""
        return "this machine's GPU" if self.device == "cuda" else "this machine's CPU"

    @property
    def basis(self) -> str:
        """Where the pace comes from, in a few words."""
        if self.n_jobs:
            return f"calibrated on {self.n_jobs} finished job{'s' if self.n_jobs != 1 else ''} on this machine"
        return "from the model table (no finished job on this machine yet)"


@dataclass(frozen=True)
class Estimate:
    """What training on the valid examples will bill (OpenAI) or train and take (local)."""

    model: str
    n_epochs: int
    billing_tokens: int  # Σ per example min(limit, tokens): one epoch
    charged_tokens: int  # × epochs: what OpenAI bills, and what the local engine reports as trained tokens
    cost_usd: float | None
    training_seconds_cpu: float | None = None
    training_seconds_gpu: float | None = None
    context_limit: int = 0
    batch_size: int | None = None
    n_steps: int | None = None
    eval_tokens: int = 0
    device: str | None = None  # where a local job will train: "cpu" | "cuda"
    training_seconds: float | None = None  # on that device
    time_basis: str = ""

    def as_dict(self) -> dict:
        """JSON-ready form (the API's `estimate`)."""
        return asdict(self)


def capped_sum(info: ModelInfo, token_totals: Sequence[int], presorted: bool = False) -> int:
    """Σ min(limit, tokens): what one epoch bills or trains. `presorted`: ascending, so bisection finds the cut."""
    limit = info.context_limit
    if presorted:
        under = bisect_right(token_totals, limit)
        return sum(token_totals[:under]) + limit * (len(token_totals) - under)
    return sum(t if t < limit else limit for t in token_totals)


def estimate(
    info: ModelInfo,
    token_totals: Sequence[int],
    n_epochs: int | None = None,
    presorted: bool = False,
    *,
    hyperparameters: dict[str, Any] | None = None,
    pace: Pace | None = None,
    validation_tokens: int = 0,
    n_validation: int = 0,
) -> Estimate:
    """Billing tokens = Σ min(limit, tokens); charged = epochs × billing; cost from the price table, time from
    `pace` (default: the model table's figures)."""
    hyper = dict(hyperparameters or {})
    if n_epochs is not None:
        hyper["n_epochs"] = n_epochs
    return estimate_from(
        info,
        len(token_totals),
        capped_sum(info, token_totals, presorted),
        hyperparameters=hyper,
        pace=pace,
        validation_tokens=validation_tokens,
        n_validation=n_validation,
    )


def _eval_tokens(steps: int, epochs: int, per_epoch: int, validation_tokens: int, n_validation: int) -> int:
    """Tokens the engine evaluates: a subset every steps // 20 steps, the whole validation file at epoch ends."""
    if not validation_tokens or not n_validation or not steps:
        return 0
    every = max(1, steps // EVALS_PER_JOB)
    ends = {e * per_epoch for e in range(1, epochs + 1)}
    cadence = sum(1 for s in range(every, steps + 1, every) if s not in ends)
    subset = validation_tokens * min(EVAL_SUBSET, n_validation) / n_validation
    return round(cadence * subset + epochs * validation_tokens)


def estimate_from(
    info: ModelInfo,
    n_examples: int,
    billing: int,
    *,
    hyperparameters: dict[str, Any] | None = None,
    pace: Pace | None = None,
    validation_tokens: int = 0,
    n_validation: int = 0,
) -> Estimate:
    """The estimate from a dataset's size and capped tokens per epoch, for the given hyperparameters ("auto" or
    numbers, as the job form takes them)."""
    requested = {k: v for k, v in (hyperparameters or {}).items() if v not in (None, "", "auto")}
    epochs = int(requested.get("n_epochs", default_epochs(n_examples)))
    charged = epochs * billing
    cost = None if info.training_usd_per_1m is None else round(charged * info.training_usd_per_1m / 1_000_000, 6)
    if not info.is_local or n_examples <= 0 or epochs <= 0:  # no job to time (OpenAI's is not ours to time)
        return Estimate(info.name, epochs, billing, charged, cost, context_limit=info.context_limit)
    try:  # the engine's own rule for "auto", so the steps are the job's
        resolved = resolve_hyperparameters({**requested, "n_epochs": epochs}, n_examples)
    except DataError:
        resolved = resolve_hyperparameters({"n_epochs": epochs}, n_examples)
    batch = resolved["batch_size"]
    per_epoch = steps_per_epoch(max(1, n_examples), batch) if n_examples else 0
    steps = per_epoch * epochs
    evaluated = _eval_tokens(steps, epochs, per_epoch, validation_tokens, n_validation)
    pace = pace or table_pace(info, "cpu")
    seconds = round(pace.seconds(charged, steps, evaluated), 1) if pace is not None else None
    return Estimate(
        info.name,
        epochs,
        billing,
        charged,
        cost,
        training_seconds_cpu=seconds if pace is not None and pace.device == "cpu" else None,
        training_seconds_gpu=seconds if pace is not None and pace.device == "cuda" else None,
        context_limit=info.context_limit,
        batch_size=batch,
        n_steps=steps,
        eval_tokens=evaluated,
        device=pace.device if pace is not None else None,
        training_seconds=seconds,
        time_basis=pace.basis if pace is not None else "",
    )


def table_pace(info: ModelInfo, device: str) -> Pace | None:
    """The model table's pace for `device` (None when the table has no throughput for it)."""
    figures = info.pace_cpu if device == "cpu" else info.pace_gpu
    if not figures:
        return None
    tokens_per_second, per_step, fixed = figures
    if not tokens_per_second:
        return None
    return Pace(device, float(tokens_per_second), float(per_step or 0.0), float(fixed or 0.0))
