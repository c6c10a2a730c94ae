"""Validation of chat fine-tuning examples: format checks, token counts, reports and estimates.

The public seam other services use:
- check_record(record) -> ExampleCheck: problems of one JSONL object, without touching the database.
- apply_check(example): recompute an Example's cached validation columns after it changed.
- count_tokens(record, model=None, settings=None) -> TokenCounts: total, assistant and trained tokens.
"""

from app.datasets.validation.checks import ExampleCheck, Problem, apply_check, check_record
from app.datasets.validation.modeltable import ModelInfo, resolve_model
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
