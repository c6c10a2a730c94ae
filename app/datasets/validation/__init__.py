"""Validation of chat fine-tuning examples: format checks, token counts, reports and estimates.

The public seam other services use:
- check_record(record) -> ExampleCheck: problems of one JSONL object (chat or preference), without the database.
- apply_check(example): recompute an Example's cached validation columns after it changed (either shape).
- count_tokens(record, model=None, settings=None) -> TokenCounts: total, assistant and trained tokens.
"""

from app.datasets.validation.checks import ExampleCheck, Problem
from app.datasets.validation.modeltable import ModelInfo, resolve_model
from app.datasets.validation.preference import apply_example_check as apply_check
from app.datasets.validation.preference import check_example as check_record
from app.datasets.validation.tokens import TokenCounts, count_tokens

__all__ = [
    "ExampleCheck",
    "ModelInfo",
    "Problem",
    "TokenCounts",
    "apply_check",
    "check_record",
    "count_tokens",
    "resolve_model",
]
