"""What the "Move off OpenAI" page shows and does: the steps' context, and launching the local replacement."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.datasets.datasets import DatasetSummary, list_datasets
from app.datasets.validation.report import ReportCache
from app.errors import Invalid
from app.jobs.jobs import JobRequest, create_job
from app.jobs.model_catalog import list_models
from app.migrate.account import AccountView, account_view
from app.migrate.agreement import AgreementReport, agreement_report, recent_agreements, start_agreement
from app.migrate.golden import golden_dataset_ids, recent_captures, start_capture
from app.migrate.import_files import IMPORTED_MARK
from app.providers.local import model_names
from app.tables import EvalRun, Job
from app.tables.common import fits_db_int

LOCAL_KINDS = ("base", "tuned", "checkpoint")


def _train_defaults(view: AccountView, settings: Settings) -> dict[str, Any]:
    """The first fine-tuned model whose training file is imported: its datasets and job suffix."""
    for model in view.models:
        datasets = {f.role: f.dataset for f in model.files if f.dataset is not None}
        if "training" in datasets:
            validation = datasets.get("validation")
            suffix = (model.job.suffix if model.job else None) or "replacement"
            return {
                "dataset_id": datasets["training"].id,
                "validation_dataset_id": validation.id if validation is not None else None,
                "suffix": suffix,
                "model": settings.default_base_model,
            }
    return {"dataset_id": None, "validation_dataset_id": None, "suffix": "replacement", "model": ""}


def _capture_source(view: AccountView) -> int | None:
    """The dataset to capture answers to by default: the first imported validation file, else training file."""
    for role in ("validation", "training"):
        for model in view.models:
            for f in model.files:
                if f.role == role and f.dataset is not None:
                    return f.dataset.id
    return None


def captures_context(session: Session) -> dict[str, Any]:
    """The latest capture runs with the names of their datasets (source and golden set)."""
    runs = recent_captures(session)
    ids = {int(r.metadata_["source_dataset_id"]) for r in runs if (r.metadata_ or {}).get("source_dataset_id")}
    ids |= {r.output_dataset_id for r in runs if r.output_dataset_id is not None}
    names = {d.id: d.name for d in list_datasets(session) if d.id in ids}
    return {"captures": runs, "dataset_names": names, "live": any(not r.status.is_terminal for r in runs)}


def page_context(session: Session, settings: Settings, *, today: date | None = None, **options: Any) -> dict[str, Any]:
    """Every step's context: the account, datasets (imported, golden, all) and the models to pick from."""
    view = account_view(session, settings, today=today, **options)
    datasets: list[DatasetSummary] = list_datasets(session)
    catalog = list_models(session, settings)
    remote = [m.id for m in view.models]
    capture_models = remote + [m.id for m in catalog if m.id not in remote]
    local_models = [m.id for m in catalog if m.kind in LOCAL_KINDS]
    tuned_local = [m.id for m in catalog if m.kind == "tuned"]
    made = golden_dataset_ids(session)
    golden = sorted((d for d in datasets if d.id in made), key=lambda d: -d.id)  # the newest first
    return {
        "view": view,
        "datasets": datasets,
        "imported": [d for d in datasets if d.dataset.description.startswith(IMPORTED_MARK)],
        "golden": golden,
        "capture_models": capture_models,
        "capture_source": _capture_source(view),
        "local_models": local_models,
        "judge_models": [m.id for m in catalog],
        "compare_default": tuned_local[0] if tuned_local else (local_models[0] if local_models else ""),
        "golden_default": golden[0].id if golden else None,
        "local_bases": model_names(settings),
        "train": _train_defaults(view, settings),
        "agreements": recent_agreements(session),
        **captures_context(session),
    }


def _dataset_id(value: Any, param: str) -> int | None:
    """A dataset id from a form's select; None when none was chosen."""
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not fits_db_int(int(text)):
        raise Invalid("Choose a dataset from the list.", param=param)
    return int(text)


def _chosen_dataset(value: Any, param: str = "dataset_id") -> int:
    """A dataset id the form must have."""
    chosen = _dataset_id(value, param)
    if chosen is None:
        raise Invalid("Choose a dataset.", param=param)
    return chosen


def launch_replacement(
    session: Session, settings: Settings, values: dict[str, Any], report_cache: ReportCache | None = None
) -> Job:
    """Queue a local job on the imported training file (validated on the validation file when there is one)."""
    validation_id = _dataset_id(values.get("validation_dataset_id"), "validation_dataset_id")
    model = str(values.get("model") or "").strip() or settings.default_base_model
    if model not in model_names(settings):
        raise Invalid(f"{model!r} is not a local base model.", param="model")
    request = JobRequest(
        dataset_id=_chosen_dataset(values.get("dataset_id")),
        validation_dataset_id=validation_id,
        use_validation_split=validation_id is None,
        provider="local",
        model=model,
        suffix=str(values.get("suffix") or "").strip() or None,
        metadata={"replaces": str(values["replaces"])[:512]} if values.get("replaces") else None,
        accept_warnings=values.get("accept_warnings") in ("on", "1", "true", "yes"),
    )
    return create_job(session, settings, request, report_cache)


def capture(session: Session, settings: Settings, values: dict[str, Any]) -> EvalRun:
    """Start a capture run from the form: a model and a dataset."""
    return start_capture(session, settings, str(values.get("model") or ""), _chosen_dataset(values.get("dataset_id")))


def compare(session: Session, settings: Settings, values: dict[str, Any]) -> EvalRun:
    """Start an agreement run from the form: the golden set, the replacement model, an optional judge."""
    judge = str(values.get("judge_model") or "").strip() or None
    golden = _chosen_dataset(values.get("dataset_id"))
    return start_agreement(session, settings, golden, str(values.get("model") or ""), judge)


def report(session: Session, run_id: str) -> AgreementReport:
    """The agreement report of a run."""
    return agreement_report(session, run_id)
