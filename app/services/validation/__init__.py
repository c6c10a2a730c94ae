"""Validation of chat fine-tuning examples: format checks, token counts, reports and estimates.

The public seam other services use (issue #3 fills in the full checks and token counting):
- check_record(record) -> ExampleCheck: problems of one JSONL object, without touching the database.
- apply_check(example): recompute an Example's cached validation columns after it changed.
"""

from app.services.validation.checks import ExampleCheck, Problem, apply_check, check_record

__all__ = ["ExampleCheck", "Problem", "apply_check", "check_record"]
