"""OpenAI's `text_similarity` grader: a similarity score between input and reference; passes at pass_threshold or above.

`cosine` (needs an embeddings model) and `meteor` (needs WordNet's synonyms) are OpenAI metrics Tuneboard doesn't
compute: they are refused when the eval is created, in plain words, rather than approximated.
"""

from __future__ import annotations

from typing import Any

from app.errors import Invalid
from app.evals.graders.base import GraderResult, capped
from app.evals.graders.fields import check_keys, name_field, number_field, text_field
from app.evals.graders.similarity import similarity
from app.evals.templating import render

TYPE = "text_similarity"
METRICS = ("fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l")
REFUSED_METRICS = {
    "cosine": "cosine similarity needs an embeddings model, which Tuneboard doesn't run",
    "meteor": "meteor needs WordNet's synonyms, which Tuneboard doesn't ship",
}
FIELDS = ("type", "name", "input", "reference", "evaluation_metric", "pass_threshold")


def validate(config: dict[str, Any], param: str) -> dict[str, Any]:
    """The config checked and normalized (Invalid names the first wrong field)."""
    check_keys(config, FIELDS, FIELDS, param)
    metric = config.get("evaluation_metric")
    if metric in REFUSED_METRICS:
        raise Invalid(
            f"{REFUSED_METRICS[metric]}: use one of {', '.join(METRICS)}.", param=f"{param}.evaluation_metric"
        )
    if metric not in METRICS:
        raise Invalid(f"evaluation_metric is one of {', '.join(METRICS)}.", param=f"{param}.evaluation_metric")
    return {
        "type": TYPE,
        "name": name_field(config, param),
        "input": text_field(config, "input", param),
        "reference": text_field(config, "reference", param),
        "evaluation_metric": metric,
        "pass_threshold": number_field(config["pass_threshold"], f"{param}.pass_threshold", low=0, high=1),
    }


def grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any]) -> GraderResult:
    """Score the rendered input against the rendered reference with the chosen metric."""
    text = capped(render(config["input"], item, sample))
    reference = capped(render(config["reference"], item, sample))
    score = similarity(config["evaluation_metric"], text, reference)
    threshold = config["pass_threshold"]
    return GraderResult(config["name"], TYPE, score, score >= threshold, None, {"pass_threshold": threshold})
