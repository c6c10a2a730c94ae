"""The checks a job launch must pass: errors refuse it, warnings need the person's acceptance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.datasets.validation.checks import CODES
from app.datasets.validation.estimate import Estimate, estimate_from
from app.datasets.validation.report import MIN_TRAINING_EXAMPLES, Report, ReportCache, build_report


@dataclass(frozen=True)
class Finding:
    """One reason, in the Report page's words: a code, how many examples, and a sentence."""

    code: str
    count: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"code": self.code, "count": self.count, "message": self.message}


@dataclass
class LaunchCheck:
    """Whether a job may start on a dataset, and what the person must accept first."""

    refusals: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    report: Report | None = None
    planned: Estimate | None = None  # the estimate for the chosen hyperparameters and validation data

    @property
    def ok(self) -> bool:
        """No refusal (warnings may still need acceptance)."""
        return not self.refusals

    @property
    def needs_acceptance(self) -> bool:
        """Whether there are warnings the person must accept before launching."""
        return bool(self.warnings)

    @property
    def estimate(self) -> Estimate | None:
        """The estimate to store on the job for "estimate vs actual": for the chosen hyperparameters, else the
        report's (default epochs)."""
        if self.planned is not None:
            return self.planned
        return self.report.estimate if self.report else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "refusals": [f.as_dict() for f in self.refusals],
            "warnings": [f.as_dict() for f in self.warnings],
            "estimate": self.estimate.as_dict() if self.estimate else None,
        }


def _sentence(code: str, count: int, prefix: str = "") -> str:
    noun = "example" if count == 1 else "examples"
    return f"{prefix}{count:,} {noun}: {CODES[code][1]}"


def launch_check(
    session: Session,
    dataset_id: int,
    model: str,
    validation_dataset_id: int | None = None,
    split: str = "train",
    settings: Any = None,
    cache: ReportCache | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> LaunchCheck:
    """Refuse a launch on errors or fewer than 10 valid training examples; list warnings to accept.

    Pass the app's ReportCache to reuse what its reports already read; without it every row is read again.
    `hyperparameters` ("auto" or numbers, as a job takes them) shape the estimate: epochs, steps and time.
    """
    if cache is None:
        cache = ReportCache()  # shared by this check's reports: the train and validation splits read rows once
    report = build_report(
        session,
        dataset_id,
        model,
        cache=cache,
        settings=settings,
        split=split,
        validation_dataset_id=validation_dataset_id,
    )
    result = LaunchCheck(report=report)
    for code, count in report.errors.items():
        result.refusals.append(Finding(code, count, _sentence(code, count)))
    for code, count in report.warnings.items():
        if code == "too_few_examples":
            message = (
                f"Only {report.n_valid} valid training example{'s' if report.n_valid != 1 else ''}; "
                f"fine-tuning needs at least {MIN_TRAINING_EXAMPLES}."
            )
            result.refusals.append(Finding(code, report.n_valid, message))
        else:
            result.warnings.append(Finding(code, count, _sentence(code, count)))
    held_out: Report | None = None
    if validation_dataset_id is not None:
        held_out = build_report(session, validation_dataset_id, model, cache=cache, settings=settings, split="all")
        for code, count in held_out.errors.items():
            result.refusals.append(Finding(code, count, _sentence(code, count, "Validation data, ")))
    elif split == "train":
        held_out = build_report(session, dataset_id, model, cache=cache, settings=settings, split="validation")
        for code, count in held_out.errors.items():
            result.refusals.append(Finding(code, count, _sentence(code, count, "Validation split, ")))
    result.planned = estimate_from(
        report.model,
        report.n_valid,
        report.estimate.billing_tokens,
        hyperparameters=hyperparameters,
        pace=report.pace,
        validation_tokens=held_out.estimate.billing_tokens if held_out else 0,
        n_validation=held_out.n_valid if held_out else 0,
    )
    return result
