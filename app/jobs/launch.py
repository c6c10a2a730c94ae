"""Launching a job: the request shape, parameter checks, immutable snapshots, the launch check, the queue.

Two doors, two behaviours (both OpenAI-like where OpenAI has one):
- from a dataset (dashboard, /api): launch refuses with Invalid in the report's words — fewer than 10 valid
  training examples (`invalid_n_examples`), errors in the dataset, or warnings not accepted;
- from an uploaded /v1 file (`training_file`): the job is created and fails at once with OpenAI's error code
  (`invalid_n_examples`, `invalid_file_format`), as OpenAI's own API does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.datasets.snapshots import get_snapshot, snapshot_dataset, write_snapshot
from app.datasets.training_plan import training_plan
from app.datasets.validation import check_record
from app.datasets.validation.launch import launch_check
from app.datasets.validation.report import ReportCache
from app.errors import Invalid
from app.jobs.events import add_event
from app.jobs.training_kind import check_method_fits
from app.providers.registry import get_provider
from app.tables import Eval, Job, JobStatus, Snapshot, UploadedFile
from app.tables.common import utcnow

MIN_EXAMPLES = 10
DEFAULT_OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
_SUFFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class JobRequest:
    """What a launch asks for. Give one training source: dataset_id, training_snapshot, or training_file.

    validation: validation_dataset_id, validation_snapshot, validation_file, or (by default) the "validation"
    split of the training dataset when it has one. hyperparameters: n_epochs, batch_size,
    learning_rate_multiplier (and lora_rank for local), each "auto" or a number; `method` in OpenAI's shape
    ({"type": "supervised", "supervised": {"hyperparameters": {...}}}) is accepted instead, and is how a DPO job
    is asked for ({"type": "dpo", "dpo": {"hyperparameters": {"beta": ...}}}: preference data only). eval_id: an eval
    (made beforehand, see app.evals.job_evals) that each checkpoint is evaluated on as it is written.
    """

    dataset_id: int | None = None
    training_snapshot: str | None = None
    training_file: str | None = None
    validation_dataset_id: int | None = None
    validation_snapshot: str | None = None
    validation_file: str | None = None
    use_validation_split: bool = True
    provider: str = "local"
    model: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    method: dict[str, Any] | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    accept_warnings: bool = False
    eval_id: str | None = None


def _method_parts(request: JobRequest) -> tuple[str, dict[str, Any]]:
    if not request.method:
        return "supervised", dict(request.hyperparameters or {})
    if not isinstance(request.method, dict) or not isinstance(request.method.get("type"), str):
        raise Invalid(
            'method must look like {"type": "supervised", "supervised": {"hyperparameters": {...}}}.', param="method"
        )
    kind = request.method["type"]
    body = request.method.get(kind) or {}
    given = body.get("hyperparameters") if isinstance(body, dict) else None
    if not isinstance(given, dict | None):
        raise Invalid("hyperparameters must be an object of names and values.", param=f"method.{kind}.hyperparameters")
    hyper = dict(given or {})
    hyper.update(request.hyperparameters or {})
    return kind, hyper


def _check_metadata(metadata: dict | None) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise Invalid("metadata must be an object of at most 16 string pairs.", param="metadata")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(str(key)) > 64 or len(value) > 512:
            raise Invalid(
                "metadata keys are at most 64 characters and values strings of at most 512.", param="metadata"
            )


def _check_eval(session: Session, eval_id: str | None) -> None:
    # Read from the table: app.evals sits above jobs, and a launch only needs to know the eval exists.
    if eval_id is not None and session.get(Eval, eval_id) is None:
        raise Invalid(f"invalid eval_id: {eval_id} (no such eval)", code="eval_not_found", param="eval_id")


def _dataset_check(
    session: Session,
    settings: Settings,
    request: JobRequest,
    dataset_id: int,
    model: str,
    report_cache: ReportCache | None = None,
) -> dict[str, Any] | None:
    """The validation report's launch check: refusals stop the launch, warnings need accepting. The estimate."""
    check = launch_check(
        session,
        dataset_id,
        model,
        validation_dataset_id=request.validation_dataset_id,
        split="train",
        settings=settings,
        cache=report_cache,
        hyperparameters=request.hyperparameters,
    )
    details = check.as_dict()
    if check.refusals:
        few = any(f.code == "too_few_examples" for f in check.refusals)
        raise Invalid(
            "This dataset cannot be launched yet: " + " ".join(f.message for f in check.refusals),
            code="invalid_n_examples" if few else "dataset_has_errors",
            param="dataset_id",
            details=details,
        )
    if check.warnings and not request.accept_warnings:
        raise Invalid(
            "Accept these warnings to launch: " + " ".join(f.message for f in check.warnings),
            code="warnings_not_accepted",
            param="accept_warnings",
            details=details,
        )
    return details["estimate"]


def _file_snapshot(session: Session, settings: Settings, file_id: str, kind: str) -> tuple[Snapshot, dict | None]:
    """Snapshot an uploaded /v1 file's valid lines; the error OpenAI would fail the job with, if any."""
    upload = session.get(UploadedFile, file_id)
    if upload is None or upload.deleted_at is not None:
        param = "training_file" if kind == "train" else "validation_file"
        # OpenAI answers 400 (not 404) for a job naming a file that does not exist.
        raise Invalid(f"invalid {param}: {file_id} (no such file)", code="invalid_file", param=param)
    failure: list[dict] = []

    def valid_lines():
        # Streamed line by line: an uploaded file can be far larger than memory should hold.
        with (settings.data_dir / upload.path).open("rb") as source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    problems = check_record(json.loads(line)).problems
                except (ValueError, RecursionError):
                    problems = None
                bad = problems is None or any(p.level == "error" for p in problems)
                if bad and not failure:
                    why = (
                        "it is not valid JSON"
                        if problems is None
                        else next(p.message for p in problems if p.level == "error")
                    )
                    failure.append(
                        {
                            "code": "invalid_file_format",
                            "param": kind + "_file",
                            "message": f"The {kind} file {file_id} has an invalid example on line {number}: {why}",
                        }
                    )
                if not bad:
                    yield line.rstrip(b"\r\n") + b"\n"

    snap = write_snapshot(session, settings, valid_lines(), kind=kind, dataset_id=upload.dataset_id)
    error = failure[0] if failure else None
    if error is None and kind == "train" and snap.n_examples < MIN_EXAMPLES:
        error = {
            "code": "invalid_n_examples",
            "param": "training_file",
            "message": f"Training file has {snap.n_examples} example(s), but must have at least "
            f"{MIN_EXAMPLES} examples",
        }
    return snap, error


def _training_source(
    session: Session, settings: Settings, request: JobRequest, model: str, report_cache: ReportCache | None
) -> tuple[Snapshot, dict[str, Any] | None, dict | None]:
    """(training snapshot, estimate, failure error) for the request's one training source."""
    given = [x for x in (request.dataset_id, request.training_snapshot, request.training_file) if x is not None]
    if len(given) != 1:
        raise Invalid(
            "Give exactly one training source: dataset_id, training_snapshot or training_file.", param="training_file"
        )
    if request.training_file is not None:
        snap, error = _file_snapshot(session, settings, request.training_file, "train")
        return snap, {"n_examples": snap.n_examples}, error
    if request.training_snapshot is not None:
        snap = get_snapshot(session, request.training_snapshot)
        return snap, {"n_examples": snap.n_examples}, None
    assert request.dataset_id is not None  # exactly one source was given, and it is this one
    estimate = _dataset_check(session, settings, request, request.dataset_id, model, report_cache)
    return snapshot_dataset(session, settings, request.dataset_id, "train"), estimate, None


def _validation_source(session: Session, settings: Settings, request: JobRequest):
    if request.validation_file:
        return _file_snapshot(session, settings, request.validation_file, "validation")
    if request.validation_snapshot:
        return get_snapshot(session, request.validation_snapshot), None
    source = request.validation_dataset_id
    if source is None and request.dataset_id is not None and request.use_validation_split:
        has_split = training_plan(session, request.dataset_id).has_validation_split
        source = request.dataset_id if has_split else None
        if source is not None:
            return snapshot_dataset(session, settings, source, "validation", kind="validation"), None
    if source is None:
        return None, None
    return snapshot_dataset(session, settings, source, "all", kind="validation"), None


def create_job(
    session: Session, settings: Settings, request: JobRequest, report_cache: ReportCache | None = None
) -> Job:
    """Check a launch, write its snapshots, and queue the job (or store it failed, for a bad /v1 file).

    `report_cache` is the app's: the launch check then reuses what the dataset's report already read."""
    provider = get_provider(request.provider, settings)
    model = request.model or (settings.default_base_model if request.provider == "local" else DEFAULT_OPENAI_MODEL)
    method_type, hyper = _method_parts(request)
    hyper = provider.check_parameters(model, hyper, method_type)
    check_method_fits(session, settings, request, method_type)
    if request.suffix is not None and not _SUFFIX.match(request.suffix):
        raise Invalid("suffix may hold up to 64 letters, digits, '-', '_' or '.'.", param="suffix")
    if request.seed is not None and not (isinstance(request.seed, int) and 0 <= request.seed <= 2**31 - 1):
        raise Invalid("seed must be an integer between 0 and 2147483647.", param="seed")
    _check_metadata(request.metadata)
    _check_eval(session, request.eval_id)
    train, estimate, error = _training_source(session, settings, request, model, report_cache)
    valid, valid_error = _validation_source(session, settings, request)
    error = error or valid_error
    session.flush()  # the snapshot rows first: the job refers to them
    job = Job(
        provider=request.provider,
        model=model,
        hyperparameters=hyper,
        suffix=request.suffix,
        seed=request.seed,
        metadata_=request.metadata,
        method={"type": method_type, method_type: {"hyperparameters": hyper}},
        dataset_id=request.dataset_id or train.dataset_id,
        training_snapshot_id=train.id,
        validation_dataset_id=request.validation_dataset_id or (valid.dataset_id if valid else None),
        validation_snapshot_id=valid.id if valid else None,
        training_file=request.training_file,
        validation_file=request.validation_file,
        estimate=estimate,
        eval_id=request.eval_id,
    )
    if error:
        job.status, job.error, job.finished_at = JobStatus.failed, error, utcnow()
    session.add(job)
    session.flush()
    add_event(session, job.id, f"Created fine-tuning job: {job.id}", commit=False)
    if error:
        add_event(session, job.id, error["message"], level="error", commit=False)
    else:
        add_event(session, job.id, f"Validated training file: {train.n_examples} examples", commit=False)
    session.commit()
    session.refresh(job)
    return job
