"""Graders with OpenAI's names and semantics, plus json_check and regex_check: pure Python, no database, no HTTP."""

from app.evals.graders.base import GraderResult, Judge
from app.evals.graders.registry import (
    GRADER_TYPES,
    grade,
    grader_needs_model,
    validate_grader,
    validate_testing_criteria,
)
from app.evals.templating import make_sample

__all__ = [
    "GRADER_TYPES",
    "GraderResult",
    "Judge",
    "grade",
    "grader_needs_model",
    "make_sample",
    "validate_grader",
    "validate_testing_criteria",
]
