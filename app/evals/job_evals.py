"""Evals of a job's checkpoints: launching a job with an eval attached, and what the job page shows of its scores.

- launch_with_eval(session, settings, values, report_cache=None) -> Job
  The job form's door: with "make one from the validation examples" it makes an eval with the default graders
  first, then launches the job with it (app.jobs.forms.launch); a refused launch leaves no eval behind. Any other
  choice (none, an existing eval) goes straight to the jobs form service.
- job_panel(session, settings, job_id) -> JobPanel
  Per checkpoint: its validation loss and its run (status, pass rate per grader with intervals); the best
  checkpoint; overfitting in plain words; the points of the eval-score chart; whether the panel is still live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.datasets.validation.report import ReportCache
from app.errors import DomainError, Invalid
from app.evals.evals import create_eval, delete_eval
from app.evals.runs import list_runs_for_job, run_summary
from app.jobs import forms as job_form
from app.jobs.events import get_job, list_checkpoints
from app.jobs.monitoring import metric_series
from app.jobs.overfit import CheckpointScore, Overfitting, best_checkpoint, checkpoint_valid_loss, detect_overfitting
from app.jobs.promote import promoted_checkpoint_id
from app.tables import Checkpoint, Eval, EvalRun, EvalRunStatus, Job, JobStatus, TunedModel

# What "make one from the validation examples" grades: close to the dataset's own answer, and exactly it.
DEFAULT_GRADERS: list[dict[str, Any]] = [
    {
        "type": "text_similarity",
        "name": "close to the reference",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.8,
    },
    {
        "type": "string_check",
        "name": "exact match",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "operation": "eq",
    },
]


def launch_with_eval(
    session: Session, settings: Settings, values: dict[str, Any], report_cache: ReportCache | None = None
) -> Job:
    """Launch from the job form, first making the eval it asks for (see the module's docstring)."""
    values = {k: v for k, v in values.items() if k != "csrf_token"}
    if job_form.eval_choice(values) != job_form.MAKE_EVAL:
        return job_form.launch(session, settings, values, report_cache)
    source = job_form.eval_source(session, job_form.form_values(values, settings))
    if source is None:
        raise Invalid(
            "This dataset has no validation examples to evaluate checkpoints on: choose an existing eval or none.",
            param="eval_choice",
        )
    made = create_eval(
        session,
        settings,
        name=None,  # "<dataset> eval", numbered when taken
        testing_criteria=DEFAULT_GRADERS,
        dataset_id=source.dataset_id,
        split=source.split,
        metadata={"made_for": "job launch"},
    )
    try:
        return job_form.launch(session, settings, values, report_cache, eval_id=made.id)
    except DomainError:
        session.rollback()
        delete_eval(session, settings, made.id)  # a refused launch leaves nothing behind
        raise


@dataclass
class CheckpointRow:
    """One checkpoint as the panel lists it."""

    checkpoint: Checkpoint
    valid_loss: float | None
    run: EvalRun | None = None
    summary: dict[str, Any] | None = None  # app.evals.runs.run_summary
    best: bool = False
    promoted: bool = False

    def grader(self, name: str) -> dict[str, Any] | None:
        """This checkpoint's result for one grader (passed, failed, pass_rate, interval), if any yet."""
        return next((g for g in (self.summary or {}).get("graders", []) if g.get("name") == name), None)

    @property
    def score(self) -> float | None:
        """The pass rate of a completed run (what ranks checkpoints); None before."""
        if self.run is None or self.run.status != EvalRunStatus.completed or not self.summary:
            return None
        return self.summary.get("pass_rate")


@dataclass
class JobPanel:
    """What the job page's evaluation panel shows."""

    job: Job
    eval: Eval | None
    graders: list[str]
    rows: list[CheckpointRow]
    best: CheckpointRow | None
    overfitting: Overfitting | None
    chart: list[dict[str, Any]] = field(default_factory=list)
    can_promote: bool = False
    live: bool = False

    @property
    def best_reason(self) -> str:
        """Why the best checkpoint is the best, in words."""
        best = self.best
        if best is None:
            return ""
        if best.score is None:
            waiting = "; no eval run has finished yet" if self.eval is not None else ""
            return f"the lowest validation loss{waiting}"
        tied = [r.checkpoint.step_number for r in self.rows if r is not best and r.score == best.score]
        if not tied:
            return "the highest pass rate"
        steps = ", ".join(str(s) for s in tied)
        return f"the highest pass rate, tied with step {steps}: the lower validation loss, then the earlier step, wins"

    @property
    def series(self) -> list[dict[str, str]]:
        """The eval chart's lines (see chart_series)."""
        return chart_series(self.graders)

    @property
    def best_is_tuned_model(self) -> bool:
        """Whether the tuned model already answers with the best checkpoint's adapter."""
        return self.best is not None and self.best.promoted


def _runs_by_checkpoint(session: Session, job: Job) -> dict[str, EvalRun]:
    """The latest run of each checkpoint on the job's eval."""
    found: dict[str, EvalRun] = {}
    for run in list_runs_for_job(session, job.id):  # oldest first: a later run replaces an earlier one
        if run.checkpoint_id and run.eval_id == job.eval_id:
            found[run.checkpoint_id] = run
    return found


def chart_series(graders: list[str]) -> list[dict[str, str]]:
    """The eval chart's lines: every grader passed (the score), then each grader on its own."""
    lines = [{"key": "s0", "label": "passed every grader"}]
    return lines + [{"key": f"s{i}", "label": name} for i, name in enumerate(graders, start=1)]


def _chart_point(row: CheckpointRow, graders: list[str]) -> dict[str, Any] | None:
    """A chart point {step, s0: pass rate, s1…: each grader's}, from what a run has graded so far."""
    if row.summary is None or row.summary.get("pass_rate") is None:
        return None
    point: dict[str, Any] = {"step": row.checkpoint.step_number, "s0": row.summary["pass_rate"]}
    for i, name in enumerate(graders, start=1):
        result = row.grader(name)
        if result is not None and result.get("pass_rate") is not None:
            point[f"s{i}"] = result["pass_rate"]
    return point


def _can_promote(session: Session, job: Job) -> bool:
    model = session.get(TunedModel, job.fine_tuned_model) if job.fine_tuned_model else None
    return job.provider == "local" and job.status == JobStatus.succeeded and model is not None and not model.deleted_at


def job_panel(session: Session, settings: Settings, job_id: str) -> JobPanel:
    """The evaluation panel of a job page (see the module's docstring)."""
    job = get_job(session, job_id)
    attached = session.get(Eval, job.eval_id) if job.eval_id else None
    runs = _runs_by_checkpoint(session, job) if attached else {}
    promoted = promoted_checkpoint_id(session, job)
    rows = []
    for checkpoint in list_checkpoints(session, job_id, newest_first=False):
        run = runs.get(checkpoint.id)
        rows.append(
            CheckpointRow(
                checkpoint,
                checkpoint_valid_loss(checkpoint.metrics),
                run,
                run_summary(run) if run is not None else None,
                promoted=checkpoint.id == promoted,
            )
        )
    scores = [
        CheckpointScore(
            r.checkpoint.id, r.checkpoint.step_number, r.checkpoint.fine_tuned_model_checkpoint, r.valid_loss, r.score
        )
        for r in rows
    ]
    chosen = best_checkpoint(scores)
    best = next((r for r in rows if chosen is not None and r.checkpoint.id == chosen.checkpoint_id), None)
    if best is not None:
        best.best = True
    graded = [
        (r.checkpoint.step_number, float(r.score), int(r.summary["passed"] + r.summary["failed"]))
        for r in rows
        if r.score is not None and r.summary is not None
    ]
    verdict = detect_overfitting(metric_series(session, job_id), graded, best.checkpoint.step_number if best else None)
    graders = [str(c.get("name", "")) for c in (attached.testing_criteria or [])] if attached else []
    live = not job.status.is_terminal or any(not r.run.status.is_terminal for r in rows if r.run is not None)
    return JobPanel(
        job=job,
        eval=attached,
        graders=graders,
        rows=rows,
        best=best,
        overfitting=verdict,
        chart=[p for p in (_chart_point(r, graders) for r in rows) if p is not None],
        can_promote=_can_promote(session, job),
        live=live,
    )
