"""Import an OpenAI job's training and validation files as datasets, with where they came from in the description.

The file is downloaded through the OpenAI provider (its size capped by TUNEBOARD_MAX_UPLOAD_BYTES) and imported
by the datasets importer, so every line is accounted for as in any import: rejected lines are listed with their
numbers and reasons. Importing the same file again returns the dataset made the first time (found by its
provenance), as long as that dataset exists and its description still says where it came from.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import create_dataset, delete_dataset
from app.datasets.importer import ImportResult, import_file
from app.errors import Invalid
from app.jobs.jobs import import_openai_jobs
from app.providers.openai import OpenAIProvider
from app.providers.openai_account import RemoteJob, download_file, retrieve_job
from app.tables import Dataset, TunedModel
from app.tables.common import utcnow

ROLES = ("training", "validation")
IMPORTED_MARK = "Imported from OpenAI file "


@dataclass
class ImportedFile:
    """One OpenAI file as a dataset; `result` is None when it had been imported before."""

    role: str
    file_id: str
    dataset: Dataset
    result: ImportResult | None

    @property
    def existed(self) -> bool:
        """Whether the dataset was there already (nothing was downloaded)."""
        return self.result is None


def _mark(file_id: str) -> str:
    return f"{IMPORTED_MARK}{file_id} "


def provenance(file_id: str, role: str, job: RemoteJob | None, day: date) -> str:
    """The description of an imported file's dataset: which file, of which job and model, when."""
    where = ""
    if job is not None:
        model = f", model {job.fine_tuned_model}" if job.fine_tuned_model else f", base model {job.model}"
        where = f"({role} file of job {job.id}{model}) "
    return f"{_mark(file_id)}{where}on {day.isoformat()}."


def find_imported(session: Session, file_id: str) -> Dataset | None:
    """The dataset an OpenAI file was imported as, if any (the oldest, should there be several)."""
    query = select(Dataset).where(col(Dataset.description).startswith(_mark(file_id), autoescape=True))
    return session.exec(query.order_by(col(Dataset.id))).first()


def _name(role: str, job: RemoteJob | None, filename: str) -> str:
    label = (job.suffix or job.fine_tuned_model or job.id) if job is not None else filename
    return f"{label} · {role} file (OpenAI)"[:200]


def provider_for(session: Session, settings: Settings, **options: Any) -> OpenAIProvider:
    """The OpenAI provider with the key and address in force (given options, the settings page, the settings)."""
    options.setdefault("engine", session.get_bind())
    return OpenAIProvider(settings, **options)


def import_openai_file(
    session: Session,
    settings: Settings,
    provider: OpenAIProvider,
    file_id: str,
    *,
    role: str = "training",
    job: RemoteJob | None = None,
) -> ImportedFile:
    """Import one OpenAI file as a new dataset, or return the dataset it was imported as before."""
    if role not in ROLES:
        raise Invalid(f"Unknown file role {role!r}: use training or validation.", param="role")
    existing = find_imported(session, file_id)
    if existing is not None:
        return ImportedFile(role, file_id, existing, None)
    target = settings.storage_path("tmp", f"openai-file-{secrets.token_hex(8)}.jsonl")
    try:
        info = download_file(provider, file_id, target, settings.max_upload_bytes)
        dataset = create_dataset(
            session, _name(role, job, info.filename), provenance(file_id, role, job, utcnow().date())
        )
        try:
            with target.open("rb") as stream:
                result = import_file(
                    session,
                    stream=stream,
                    dataset_id=int(dataset.id or 0),
                    filename=info.filename,
                    kind="jsonl",
                    settings=settings,
                )
        except BaseException:
            # No half-made dataset stays behind to be mistaken for the import next time.
            session.rollback()
            delete_dataset(session, int(dataset.id or 0))
            raise
    finally:
        target.unlink(missing_ok=True)
    session.refresh(dataset)
    return ImportedFile(role, file_id, dataset, result)


def make_model_known(session: Session, settings: Settings, model_id: str, **provider_options: Any) -> bool:
    """Import the account's jobs (app.jobs.openai_import) when `model_id` is a fine-tuned OpenAI model Tuneboard does
    not know yet, so that it can be chatted with and captured; returns whether it is known now."""
    if session.get(TunedModel, model_id) is not None:
        return True
    if not model_id.startswith("ft:"):
        return False
    provider_options.setdefault("engine", session.get_bind())
    import_openai_jobs(session, settings, **provider_options)
    return session.get(TunedModel, model_id) is not None


def import_job_files(session: Session, settings: Settings, job_id: str, **provider_options: Any) -> list[ImportedFile]:
    """Import a job's training file and its validation file (when it has one); already imported ones are reused.

    The job itself is imported too (with the account's other jobs), so its fine-tuned model can be captured."""
    job_id = (job_id or "").strip()
    if not job_id:
        raise Invalid("Choose the OpenAI job whose files to import.", param="job_id")
    with provider_for(session, settings, **provider_options) as provider:
        job = retrieve_job(provider, job_id)
        files = [(role, fid) for role, fid in zip(ROLES, (job.training_file, job.validation_file), strict=True) if fid]
        imported = [import_openai_file(session, settings, provider, fid, role=role, job=job) for role, fid in files]
    if job.fine_tuned_model:
        make_model_known(session, settings, job.fine_tuned_model, **provider_options)
    return imported
