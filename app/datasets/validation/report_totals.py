"""The Report's numbers from per-split running statistics: no database, so a file can be reported as a dataset is."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.datasets.validation.checks import CODES
from app.datasets.validation.estimate import Estimate, Pace, capped_sum, estimate
from app.datasets.validation.modeltable import ModelInfo, table_date
from app.datasets.validation.report_groups import GROUPS_OF_SPLIT, Group
from app.datasets.validation.report_quality import QualityFindings
from app.datasets.validation.stats import Bin, Summary, histogram, summarize

MIN_TRAINING_EXAMPLES = 10


@dataclass
class Report:
    """Everything the Report page and /api/datasets/{id}/report show."""

    dataset_id: int
    model: ModelInfo
    split: str
    n_examples: int
    n_valid: int
    errors: dict[str, int]
    warnings: dict[str, int]
    tokens: Summary | None
    assistant_tokens: Summary | None
    messages: Summary | None
    estimate: Estimate
    histogram: list[Bin] = field(default_factory=list)
    exact: bool = True
    tokens_lost: int = 0
    table_date: str = ""
    dataset_name: str = ""
    pace: Pace | None = None  # the local training pace the estimate's time comes from
    quality: QualityFindings | None = None  # near-duplicates and outliers, once the quality pass ran

    def as_api(self) -> dict[str, Any]:
        """The JSON shape of GET /api/datasets/{id}/report."""
        empty = None
        return {
            "dataset_id": self.dataset_id,
            "split": self.split,
            "n_examples": self.n_examples,
            "n_valid": self.n_valid,
            "errors": self.errors,
            "warnings": self.warnings,
            "tokens": self.tokens.as_dict() if self.tokens else empty,
            "assistant_tokens": self.assistant_tokens.as_dict() if self.assistant_tokens else empty,
            "messages": self.messages.as_dict() if self.messages else empty,
            "estimate": self.estimate.as_dict(),
            "exact_counts": self.exact,
            "table_date": self.table_date,
            "quality": self.quality.as_api() if self.quality is not None else None,
        }


def _merged(lists: list[list[int]]) -> list[int]:
    # Sorting the concatenation of sorted lists merges their runs in linear time.
    return lists[0] if len(lists) == 1 else sorted(itertools.chain.from_iterable(lists))


def _distinct(counters: list[Counter]) -> int:
    """How many distinct keys the counters hold together (the largest is not copied)."""
    largest, *others = sorted(counters, key=len, reverse=True)
    extra = {k for c in others for k in c if k not in largest}
    return len(largest) + len(extra)


def aggregate(
    groups: dict[str, Group],
    info: ModelInfo,
    split: str,
    extra_leaks: set[str],
    exact: bool,
    dataset_id: int = 0,
    dataset_name: str = "",
    pace: Pace | None = None,
) -> Report:
    """The report from the split's running statistics (report_groups): no pass over the rows.

    Pure: the dashboard feeds it a dataset's snapshot, `tuneboard check` the rows of a file (`extra_leaks`: content
    hashes of a separate validation set). `pace`: this machine's local training pace (default: the model table's)."""
    parts = [groups[g] for g in GROUPS_OF_SPLIT[split] if g in groups] or [Group()]
    totals = _merged([p.totals for p in parts])
    n_examples = sum(p.n for p in parts)
    counts: Counter = Counter()
    for part in parts:
        counts.update(part.codes)
    limit = info.context_limit
    over = totals[bisect_right(totals, limit) :]
    if over:
        counts["over_context_limit"] = len(over)
    duplicates = n_examples - _distinct([p.hashes for p in parts])
    if duplicates:
        counts["duplicate_example"] = duplicates
    if split == "train":
        train = parts[0].hashes
        leaked = groups["validation"].hashes.keys() | extra_leaks if "validation" in groups else extra_leaks
        n_leaked = sum(train.get(h, 0) for h in leaked)
        if n_leaked:
            counts["train_validation_leakage"] = n_leaked
        if len(totals) < MIN_TRAINING_EXAMPLES:
            counts["too_few_examples"] = 1
    # The training split's estimate includes evaluating the held-out split, as a job with it does.
    held_out = groups["validation"].totals if split == "train" and "validation" in groups else []
    errors = {c: counts[c] for c in CODES if CODES[c][0] == "error" and counts[c]}
    warnings = {c: counts[c] for c in CODES if CODES[c][0] == "warning" and counts[c]}
    return Report(
        dataset_id=dataset_id,
        model=info,
        split=split,
        n_examples=n_examples,
        n_valid=len(totals),
        errors=errors,
        warnings=warnings,
        tokens=summarize(totals, presorted=True),
        assistant_tokens=summarize(_merged([p.assistant for p in parts]), presorted=True),
        messages=summarize(_merged([p.messages for p in parts]), presorted=True),
        estimate=estimate(
            info,
            totals,
            presorted=True,
            pace=pace,
            validation_tokens=capped_sum(info, held_out, presorted=True),
            n_validation=len(held_out),
        ),
        histogram=histogram(totals, presorted=True),
        exact=exact,
        tokens_lost=sum(over) - len(over) * limit,
        table_date=table_date(),
        dataset_name=dataset_name,
        pace=pace,
    )
