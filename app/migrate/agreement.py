"""Agreement: how closely a replacement model answers like the golden set (the answers of the model it replaces).

An eval over the golden dataset with three graders: `string_check` eq (exact match), `text_similarity`
fuzzy_match (passes at 0.8) and, when a judge model is chosen, `score_model` (the judge rates 1–5 how well the
answer matches the reference; 4 or more passes). The report gives the exact-match rate, the mean similarity and
the judge's pass rate, each with its 95% interval, and lists the items whose answers differ.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import get_dataset
from app.errors import Invalid
from app.evals.evals import create_eval, get_eval
from app.evals.items import content_text
from app.evals.runs import create_run, find_run
from app.evals.stats import Rate, pass_rate
from app.migrate.golden import sampling
from app.migrate.import_files import make_model_known
from app.tables import Dataset, EvalRun, EvalRunItem

AGREEMENT = "agreement"
EXACT, SIMILAR, JUDGE = "exact match", "similarity", "judge"
SIMILARITY_THRESHOLD = 0.8
JUDGE_PASS = 4
MAX_LISTED = 200  # disagreeing items shown on the report
JUDGE_PROMPT = (
    "You compare an answer with a reference answer to the same conversation. Rate from 1 to 5 how well the answer "
    "matches the reference in meaning, facts and form: 5 the same, 4 the same meaning with small differences, 3 "
    'partly the same, 2 mostly different, 1 unrelated. Reply with JSON only: {"score": <1-5>}.'
)
# Student's t at 97.5% for 1..30 degrees of freedom (a 95% two-sided interval for a mean of few scores).
_T975 = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131),
    *(2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)


def agreement_criteria(judge_model: str | None = None) -> list[dict[str, Any]]:
    """The agreement graders: exact match, similarity, and the judge when one is chosen."""
    criteria: list[dict[str, Any]] = [
        {
            "type": "string_check",
            "name": EXACT,
            "input": "{{sample.output_text}}",
            "reference": "{{item.reference}}",
            "operation": "eq",
        },
        {
            "type": "text_similarity",
            "name": SIMILAR,
            "input": "{{sample.output_text}}",
            "reference": "{{item.reference}}",
            "evaluation_metric": "fuzzy_match",
            "pass_threshold": SIMILARITY_THRESHOLD,
        },
    ]
    if judge_model:
        criteria.append(
            {
                "type": "score_model",
                "name": JUDGE,
                "model": judge_model,
                "input": [
                    {"role": "system", "content": JUDGE_PROMPT},
                    {
                        "role": "user",
                        "content": "Reference answer:\n{{item.reference}}\n\nAnswer to rate:\n{{sample.output_text}}",
                    },
                ],
                "range": [1, 5],
                "pass_threshold": JUDGE_PASS,
            }
        )
    return criteria


def start_agreement(
    session: Session,
    settings: Settings,
    golden_dataset_id: int,
    model_id: str,
    judge_model: str | None = None,
    *,
    max_tokens: int | None = None,
    **provider_options: Any,
) -> EvalRun:
    """Queue the replacement model's run on the golden set, graded for agreement."""
    model_id, judge = (model_id or "").strip(), (judge_model or "").strip() or None
    if not model_id:
        raise Invalid("Choose the model to compare with the golden set.", param="model")
    if judge is not None and judge.startswith("ft:"):
        make_model_known(session, settings, judge, **provider_options)
    golden = get_dataset(session, golden_dataset_id)
    name = f"Agreement: {model_id} with {golden.name}"[:190] + f" · {secrets.token_hex(3)}"
    evaluation = create_eval(
        session,
        settings,
        name=name,
        testing_criteria=agreement_criteria(judge),
        dataset_id=golden_dataset_id,
        split="all",
        metadata={"tuneboard": AGREEMENT},
    )
    return create_run(
        session,
        settings,
        evaluation.id,
        model=model_id,
        data_source=sampling(max_tokens),
        name=f"agreement {model_id}"[:200],
        metadata={"tuneboard": AGREEMENT, "golden_dataset_id": str(golden_dataset_id)},
    )


def recent_agreements(session: Session, limit: int = 20) -> list[EvalRun]:
    """The latest agreement runs, newest first."""
    query = select(EvalRun).where(col(EvalRun.metadata_)["tuneboard"].as_string() == AGREEMENT)
    return list(session.exec(query.order_by(col(EvalRun.created_at).desc()).limit(limit)))


@dataclass(frozen=True)
class MeanScore:
    """A mean score with its 95% interval (Student's t); `value` None when nothing was scored."""

    value: float | None
    low: float
    high: float
    n: int


def mean_interval(scores: list[float], low_bound: float = 0.0, high_bound: float = 1.0) -> MeanScore:
    """The mean of scores with a 95% t interval, kept within the scores' possible range."""
    n = len(scores)
    if n == 0:
        return MeanScore(None, low_bound, high_bound, 0)
    mean = sum(scores) / n
    if n == 1:
        return MeanScore(mean, low_bound, high_bound, 1)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else (2.0 if n <= 61 else 1.98 if n <= 121 else 1.96)
    half = t * sd / math.sqrt(n)
    return MeanScore(mean, max(low_bound, mean - half), min(high_bound, mean + half), n)


@dataclass(frozen=True)
class Disagreement:
    """An item whose answer is not exactly the golden one."""

    index: int
    prompt: str
    reference: str
    output: str
    similarity: float | None
    judge: float | None
    error: str | None


@dataclass
class AgreementReport:
    """How close the replacement is to the golden set."""

    run: EvalRun
    golden: Dataset | None
    exact: Rate
    similarity: MeanScore
    judge: Rate | None
    errored: int
    disagreements: list[Disagreement] = field(default_factory=list)
    n_disagreements: int = 0

    @property
    def done(self) -> bool:
        """Whether the run has ended (the figures are final)."""
        return self.run.status.is_terminal


def _result(results: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in results if isinstance(r, dict) and r.get("name") == name), None)


def _graded(entry: dict[str, Any] | None) -> bool:
    return entry is not None and not entry.get("error")


def _prompt(item: dict[str, Any]) -> str:
    messages = item.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return content_text(users[-1].get("content")) if users else ""


def _output(sample: dict[str, Any] | None) -> str:
    outputs = (sample or {}).get("output") or []
    return "".join(content_text(o.get("content")) for o in outputs if isinstance(o, dict))


def _error(sample: dict[str, Any], exact: dict[str, Any] | None) -> str | None:
    error = sample.get("error") or (exact or {}).get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error) if error else None


def agreement_report(session: Session, run_id: str) -> AgreementReport:
    """The agreement report of a run (partial while it runs): rates with intervals and the differing items."""
    run = find_run(session, run_id)
    evaluation = get_eval(session, run.eval_id)
    golden = session.get(Dataset, evaluation.dataset_id) if evaluation.dataset_id is not None else None
    judged = any(c.get("name") == JUDGE for c in evaluation.testing_criteria or [])
    rows = session.exec(
        select(EvalRunItem).where(col(EvalRunItem.run_id) == run.id).order_by(col(EvalRunItem.item_index))
    )
    exact_passed = exact_graded = judge_passed = judge_graded = errored = 0
    similarities: list[float] = []
    differing: list[Disagreement] = []
    for row in rows:
        results = row.results or []
        exact, similar, judge = _result(results, EXACT), _result(results, SIMILAR), _result(results, JUDGE)
        if row.status == "error":
            errored += 1
        if _graded(exact):
            exact_graded += 1
            exact_passed += bool(exact and exact.get("passed"))
        if _graded(similar) and similar is not None:
            similarities.append(float(similar.get("score") or 0.0))
        if _graded(judge) and judge is not None:
            judge_graded += 1
            judge_passed += bool(judge.get("passed"))
        if not (exact and exact.get("passed")):
            sample = row.sample or {}
            differing.append(
                Disagreement(
                    index=row.item_index,
                    prompt=_prompt(row.item or {}),
                    reference=str((row.item or {}).get("reference", "")),
                    output=_output(sample),
                    similarity=float(similar["score"]) if _graded(similar) and similar is not None else None,
                    judge=float(judge["score"]) if _graded(judge) and judge is not None else None,
                    error=_error(sample, exact),
                )
            )
    differing.sort(key=lambda d: (d.similarity if d.similarity is not None else -1.0, d.index))
    return AgreementReport(
        run=run,
        golden=golden,
        exact=pass_rate(exact_passed, exact_graded),
        similarity=mean_interval(similarities),
        judge=pass_rate(judge_passed, judge_graded) if judged else None,
        errored=errored,
        disagreements=differing[:MAX_LISTED],
        n_disagreements=len(differing),
    )
