"""Default epochs and cost by the OpenAI cookbook's rule, or training time for local models."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from app.datasets.validation.modeltable import ModelInfo

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


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
class Estimate:
    """What training on the valid examples will bill (OpenAI) or take (local)."""

    model: str
    n_epochs: int
    billing_tokens: int
    charged_tokens: int
    cost_usd: float | None
    training_seconds_cpu: float | None = None
    training_seconds_gpu: float | None = None
    context_limit: int = 0

    def as_dict(self) -> dict:
        """JSON-ready form (the API's `estimate`)."""
        return asdict(self)


def estimate(
    info: ModelInfo, token_totals: Sequence[int], n_epochs: int | None = None, presorted: bool = False
) -> Estimate:
    """Billing tokens = Σ min(limit, tokens); charged = epochs × billing; cost from the price table.

    `presorted`: the totals are in ascending order, so the ones over the limit are found by bisection.
    """
    epochs = default_epochs(len(token_totals)) if n_epochs is None else n_epochs
    limit = info.context_limit
    if presorted:
        under = bisect_right(token_totals, limit)
        billing = sum(token_totals[:under]) + limit * (len(token_totals) - under)
    else:
        billing = sum(t if t < limit else limit for t in token_totals)
    charged = epochs * billing
    cost = None if info.training_usd_per_1m is None else round(charged * info.training_usd_per_1m / 1_000_000, 6)
    cpu = gpu = None
    if info.train_tokens_per_second_cpu:
        cpu = round(charged / info.train_tokens_per_second_cpu, 1)
    if info.train_tokens_per_second_gpu:
        gpu = round(charged / info.train_tokens_per_second_gpu, 1)
    return Estimate(info.name, epochs, billing, charged, cost, cpu, gpu, limit)
