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
from app.migrate.import_files import IMPORTED_MARK
from app.providers.local import model_names
from app.tables import Job
from app.tables.common import fits_db_int

GOLDEN_MARK = "Golden set:"
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


def page_context(session: Session, settings: Settings, *, today: date | None = None, **options: Any) -> dict[str, Any]:
    """Every step's context: the account, datasets (imported, golden, all) and the models to pick from."""
    view = account_view(session, settings, today=today, **options)
    datasets: list[DatasetSummary] = list_datasets(session)
    catalog = list_models(session, settings)
    remote = [m.id for m in view.models]
    capture_models = remote + [m.id for m in catalog if m.id not in remote]
    local_models = [m.id for m in catalog if m.kind in LOCAL_KINDS]
    tuned_local = [m.id for m in catalog if m.kind == "tuned"]
    return {
        "view": view,
        "datasets": datasets,
        "imported": [d for d in datasets if d.dataset.description.startswith(IMPORTED_MARK)],
        "golden": [d for d in datasets if d.dataset.description.startswith(GOLDEN_MARK)],
        "capture_models": capture_models,
        "local_models": local_models,
        "compare_default": tuned_local[0] if tuned_local else (local_models[0] if local_models else ""),
        "local_bases": model_names(settings),
        "train": _train_defaults(view, settings),
    }


def _dataset_id(value: Any, param: str, required: bool) -> int | None:
    text = str(value or "").strip()
    if not text:
        if required:
            raise Invalid("Choose the dataset to train on.", param=param)
        return None
    if not text.isdigit() or not fits_db_int(int(text)):
        raise Invalid("Choose a dataset from the list.", param=param)
    return int(text)


def launch_replacement(
    session: Session, settings: Settings, values: dict[str, Any], report_cache: ReportCache | None = None
) -> Job:
    """Queue a local job on the imported training file (validated on the validation file when there is one)."""
    validation_id = _dataset_id(values.get("validation_dataset_id"), "validation_dataset_id", required=False)
    model = str(values.get("model") or "").strip() or settings.default_base_model
    if model not in model_names(settings):
        raise Invalid(f"{model!r} is not a local base model.", param="model")
    request = JobRequest(
        dataset_id=_dataset_id(values.get("dataset_id"), "dataset_id", required=True),
        validation_dataset_id=validation_id,
        use_validation_split=validation_id is None,
        provider="local",
        model=model,
        suffix=str(values.get("suffix") or "").strip() or None,
        metadata={"replaces": str(values["replaces"])[:512]} if values.get("replaces") else None,
        accept_warnings=values.get("accept_warnings") in ("on", "1", "true", "yes"),
    )
    return create_job(session, settings, request, report_cache)
