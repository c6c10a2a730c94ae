"""The OpenAI account as the move-off page shows it: fine-tuned models, their base and its retirement, jobs, files.

Each file says whether it has been imported (and as which dataset). A fine-tuned model made elsewhere becomes a
model Tuneboard can chat with (and capture) once its job is imported (app.jobs.openai_import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.migrate.import_files import ROLES, find_imported, make_model_known, provider_for
from app.migrate.retirements import Retirement, days_until, fine_tuning_cutoff, retirement_of
from app.providers.base import ProviderError
from app.providers.openai_account import RemoteJob, list_fine_tuned_models
from app.settings.store import OPENAI_API_KEY, get_value
from app.tables import Dataset, TunedModel

__all__ = ["AccountFile", "AccountModel", "AccountView", "account_view", "make_model_known", "openai_connected"]


@dataclass
class AccountFile:
    """A job's training or validation file, and the dataset it was imported as (None: not yet)."""

    role: str
    file_id: str
    dataset: Dataset | None


@dataclass
class AccountModel:
    """A fine-tuned model of the account: base, retirement, the job that made it and its files."""

    id: str
    base_model: str
    created: int
    job: RemoteJob | None
    retirement: Retirement | None
    files: list[AccountFile] = field(default_factory=list)
    known: bool = False  # its job has been imported: Tuneboard can chat with it and capture its answers

    @property
    def to_import(self) -> bool:
        """Whether a file of its job is not imported yet."""
        return any(f.dataset is None for f in self.files)


@dataclass
class AccountView:
    """Everything step 2 of the move shows; `error` is OpenAI's refusal in plain words, if it refused."""

    connected: bool
    cutoff: date
    cutoff_days: int
    models: list[AccountModel] = field(default_factory=list)
    other_jobs: list[tuple[RemoteJob, list[AccountFile]]] = field(default_factory=list)
    error: str | None = None


def openai_connected(session: Session, settings: Settings) -> bool:
    """Whether an OpenAI key is set (in the settings or on the settings page)."""
    return bool(settings.openai_api_key or get_value(session, OPENAI_API_KEY))


def _files(session: Session, job: RemoteJob | None) -> list[AccountFile]:
    if job is None:
        return []
    ids = zip(ROLES, (job.training_file, job.validation_file), strict=True)
    return [AccountFile(role, fid, find_imported(session, fid)) for role, fid in ids if fid]


def account_view(
    session: Session, settings: Settings, *, today: date | None = None, **provider_options: Any
) -> AccountView:
    """The account's fine-tuned models (newest first) and its other jobs, each with its files' import state."""
    cutoff = fine_tuning_cutoff()
    view = AccountView(
        connected=openai_connected(session, settings) or "api_key" in provider_options,
        cutoff=cutoff,
        cutoff_days=days_until(cutoff, today),
    )
    if not view.connected:
        return view
    try:
        with provider_for(session, settings, **provider_options) as provider:
            models, jobs = list_fine_tuned_models(provider)
    except ProviderError as exc:
        view.error = exc.message
        return view
    for model in models:
        view.models.append(
            AccountModel(
                id=model.id,
                base_model=model.base_model,
                created=model.created,
                job=model.job,
                retirement=retirement_of(model.base_model, today),
                files=_files(session, model.job),
                known=session.get(TunedModel, model.id) is not None,
            )
        )
    listed = {m.id for m in models}
    view.other_jobs = [(job, _files(session, job)) for job in jobs if job.fine_tuned_model not in listed]
    return view
