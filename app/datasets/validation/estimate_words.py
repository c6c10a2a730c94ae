"""The estimate in people's words: labelled rows for the job form (a cost only where a provider bills)."""

from __future__ import annotations

from dataclasses import dataclass

from app.datasets.validation.estimate import Estimate
from app.datasets.validation.modeltable import ModelInfo


@dataclass(frozen=True)
class EstimateRow:
    """One line of the form's estimate: a stable key (for tests and styling), a label, a value and a note."""

    key: str
    label: str
    value: str
    note: str = ""


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds / 10) * 10):.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"about {minutes:.0f} min" if minutes >= 10 else f"about {minutes:.1f} min"
    return f"about {minutes / 60:.1f} h"


def estimate_rows(estimate: Estimate | None, info: ModelInfo | None, exact: bool = True) -> list[EstimateRow]:
    """The estimate as labelled rows for people: a cost only where a provider bills, a time on the job's device."""
    if estimate is None or info is None:
        return []
    counted = info.counted_with if exact else "OpenAI's o200k_base tokenizer, as an approximation"
    per_epoch = (
        f"{estimate.billing_tokens:,} per epoch × {estimate.n_epochs} epoch{'s' if estimate.n_epochs != 1 else ''}"
    )
    rows = [
        EstimateRow("model", "Base model", estimate.model),
        EstimateRow("epochs", "Epochs", f"{estimate.n_epochs}"),
    ]
    if not info.is_local:
        rows.append(EstimateRow("tokens", "Tokens billed", f"{estimate.charged_tokens:,}", f"{per_epoch}; {counted}"))
        if estimate.cost_usd is None:
            rows.append(EstimateRow("cost", "Cost", "no price known", "the model table has no training price for it"))
        else:
            price = f"${info.training_usd_per_1m:.2f} per 1M training tokens" if info.training_usd_per_1m else ""
            rows.append(EstimateRow("cost", "Cost", f"${estimate.cost_usd:,.2f}", price))
        return rows
    if estimate.n_steps:
        rows.append(EstimateRow("steps", "Steps", f"{estimate.n_steps:,}", f"batches of {estimate.batch_size}"))
    rows.append(EstimateRow("tokens", "Tokens trained", f"{estimate.charged_tokens:,}", f"{per_epoch}; {counted}"))
    where = "this machine's GPU" if estimate.device == "cuda" else "this machine's CPU"
    if estimate.training_seconds is None:
        rows.append(EstimateRow("time", f"Estimated time on {where}", "unknown", "no measured pace for this model"))
    else:
        rows.append(
            EstimateRow("time", f"Estimated time on {where}", _minutes(estimate.training_seconds), estimate.time_basis)
        )
    return rows
