"""The grader types: checking a grader's config, grading one item with it, and which model it needs as a judge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import Invalid
from app.evals.graders import (
    json_check,
    model_graders,
    regex_check,
    string_check,
    text_similarity,
    tool_call_check,
)
from app.evals.graders.base import GraderResult, Judge

MAX_CRITERIA = 50
NO_USER_CODE = "No user code runs on the server"
REFUSED = {
    "python": f"{NO_USER_CODE}: python graders run the code they carry. Use string_check, text_similarity, "
    "json_check, regex_check or tool_call_check, or a judge model (score_model, label_model).",
    "multi": f"{NO_USER_CODE}: multi graders combine scores with a formula (calculate_output). Add each grader as "
    "its own testing criterion instead.",
}

Validate = Callable[[dict[str, Any], str], dict[str, Any]]
Grade = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], Judge | None], GraderResult]


@dataclass(frozen=True)
class GraderKind:
    """How to check and run one grader type; `judged` when it asks a model."""

    validate: Validate
    grade: Grade
    judged: bool = False


def _without_judge(grade_item: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], GraderResult]) -> Grade:
    """A deterministic grader's function, taking (and ignoring) the judge like the others."""
    return lambda config, item, sample, judge: grade_item(config, item, sample)


GRADERS: dict[str, GraderKind] = {
    string_check.TYPE: GraderKind(string_check.validate, _without_judge(string_check.grade)),
    text_similarity.TYPE: GraderKind(text_similarity.validate, _without_judge(text_similarity.grade)),
    json_check.TYPE: GraderKind(json_check.validate, _without_judge(json_check.grade)),
    regex_check.TYPE: GraderKind(regex_check.validate, _without_judge(regex_check.grade)),
    tool_call_check.TYPE: GraderKind(tool_call_check.validate, _without_judge(tool_call_check.grade)),
    model_graders.SCORE_TYPE: GraderKind(
        model_graders.validate_score_model, model_graders.grade_score_model, judged=True
    ),
    model_graders.LABEL_TYPE: GraderKind(
        model_graders.validate_label_model, model_graders.grade_label_model, judged=True
    ),
}
GRADER_TYPES = tuple(GRADERS)


def validate_grader(config: Any, index: int) -> dict[str, Any]:
    """The grader config at `testing_criteria[index]`, checked and normalized; Invalid names the wrong field."""
    param = f"testing_criteria[{index}]"
    if not isinstance(config, dict):
        raise Invalid("Each testing criterion is a grader: an object with a type and a name.", param=param)
    kind = config.get("type")
    if kind in REFUSED:
        raise Invalid(REFUSED[kind], param=f"{param}.type")
    if kind not in GRADERS:
        shown = f"{kind!r}" if isinstance(kind, str) else "missing"
        raise Invalid(f"The grader type is {shown}: use one of {', '.join(GRADER_TYPES)}.", param=f"{param}.type")
    return GRADERS[kind].validate(config, param)


def validate_testing_criteria(criteria: Any) -> list[dict[str, Any]]:
    """Every grader checked and normalized, with distinct names (an empty list is allowed)."""
    if not isinstance(criteria, list):
        raise Invalid("testing_criteria is a list of graders.", param="testing_criteria")
    if len(criteria) > MAX_CRITERIA:
        raise Invalid(f"An eval has at most {MAX_CRITERIA} graders.", param="testing_criteria")
    normalized = [validate_grader(config, index) for index, config in enumerate(criteria)]
    seen: set[str] = set()
    for index, config in enumerate(normalized):
        if config["name"] in seen:
            raise Invalid(
                f"Two graders are named {config['name']!r}: give each its own name.",
                param=f"testing_criteria[{index}].name",
            )
        seen.add(config["name"])
    return normalized


def grade(
    config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any], judge: Judge | None = None
) -> GraderResult:
    """Grade one item's sample with a validated grader config (judge graders ask `judge`)."""
    kind = GRADERS.get(config.get("type", ""))
    if kind is None:
        name, kind_name = str(config.get("name", "")), str(config.get("type", ""))
        return GraderResult(name, kind_name, 0.0, False, f"Unknown grader type {kind_name!r}.")
    return kind.grade(config, item, sample, judge)


def grader_needs_model(config: dict[str, Any]) -> str | None:
    """The model a grader asks as its judge, or None for a grader that asks none."""
    kind = GRADERS.get(config.get("type", ""))
    return str(config["model"]) if kind is not None and kind.judged else None
