"""Reading an OpenAI account: its fine-tuned models with the jobs that made them, and the jobs' files.

Functions taking an OpenAIProvider, so every call goes through its client (and the SDK's retries of rate limits and
server errors) and its plain-words errors. They serve a page and a click, so a failure is told at once rather than
retried for minutes as a job's poll loop does. What they return is plain data (no SDK objects), for app/migrate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import Invalid
from app.providers.openai import OpenAIProvider, _translated
from app.providers.openai_replies import remote_status

CHECKPOINT_MARK = ":ckpt-step-"


@dataclass(frozen=True)
class RemoteJob:
    """An OpenAI fine-tuning job, reduced to what a move off OpenAI needs."""

    id: str
    model: str  # the base model it tuned
    status: str
    fine_tuned_model: str | None
    training_file: str | None
    validation_file: str | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    created_at: int | None = None
    finished_at: int | None = None


@dataclass(frozen=True)
class RemoteFineTunedModel:
    """A fine-tuned model of the account, its base, and the job that made it (None if no job of the account did)."""

    id: str
    base_model: str
    created: int
    owned_by: str
    job: RemoteJob | None


@dataclass(frozen=True)
class RemoteFile:
    """An OpenAI file object."""

    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int


def base_of(model_id: str) -> str:
    """The base model named in a fine-tuned id: `ft:gpt-4o-mini-2024-07-18:org:suffix:id` → gpt-4o-mini-2024-07-18."""
    if model_id.startswith("ft:"):
        return model_id.split(":")[1]
    return model_id


def _job(job: Any) -> RemoteJob:
    status = remote_status(job)
    return RemoteJob(
        id=job.id,
        model=job.model,
        status=status.status.value,
        fine_tuned_model=job.fine_tuned_model,
        training_file=job.training_file,
        validation_file=job.validation_file,
        hyperparameters=status.hyperparameters or {},
        suffix=getattr(job, "suffix", None),
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def list_jobs(provider: OpenAIProvider) -> list[RemoteJob]:
    """Every fine-tuning job of the account (all pages), newest first as OpenAI lists them."""
    with _translated("list fine-tuning jobs"):  # later pages are fetched while iterating
        jobs = list(provider.client.fine_tuning.jobs.list(limit=100))
    return [_job(job) for job in jobs]


def retrieve_job(provider: OpenAIProvider, job_id: str) -> RemoteJob:
    """One fine-tuning job of the account."""
    return _job(provider._call("read the job", provider.client.fine_tuning.jobs.retrieve, job_id))


def list_fine_tuned_models(provider: OpenAIProvider) -> tuple[list[RemoteFineTunedModel], list[RemoteJob]]:
    """The account's fine-tuned models (checkpoints left out), each with its job, and every job of the account."""
    models = provider._call("list models", provider.client.models.list)
    jobs = list_jobs(provider)
    by_model = {job.fine_tuned_model: job for job in jobs if job.fine_tuned_model}
    out = []
    with _translated("list models"):
        listed = list(models)
    for model in listed:
        if not model.id.startswith("ft:") or CHECKPOINT_MARK in model.id:
            continue
        job = by_model.get(model.id)
        out.append(
            RemoteFineTunedModel(
                id=model.id,
                base_model=job.model if job is not None else base_of(model.id),
                created=model.created,
                owned_by=model.owned_by,
                job=job,
            )
        )
    out.sort(key=lambda m: m.created, reverse=True)
    return out, jobs


def retrieve_file(provider: OpenAIProvider, file_id: str) -> RemoteFile:
    """A file's object (name, size, purpose)."""
    found = provider._call("read the file", provider.client.files.retrieve, file_id)
    return RemoteFile(
        id=found.id,
        filename=found.filename,
        bytes=found.bytes,
        purpose=found.purpose,
        created_at=found.created_at,
    )


def _too_big(file_id: str, size: int, limit: int) -> Invalid:
    return Invalid(
        f"OpenAI's file {file_id} is {size:,} bytes, more than the {limit:,} bytes an upload may carry here "
        "(TUNEBOARD_MAX_UPLOAD_BYTES). Raise that limit to import it.",
        code="file_too_large",
        param="file_id",
    )


def download_file(provider: OpenAIProvider, file_id: str, target: Path, max_bytes: int) -> RemoteFile:
    """Write a file's content to `target` (complete before it gets its name), refusing more than max_bytes.

    The size OpenAI states is checked first; the bytes are counted again as they arrive, and the download stops
    as soon as they pass the limit.
    """
    info = retrieve_file(provider, file_id)
    if info.bytes > max_bytes:
        raise _too_big(file_id, info.bytes, max_bytes)
    partial = target.with_name(target.name + ".part")
    received = 0
    try:
        with _translated("download the file"), partial.open("wb") as out:
            with provider.client.files.with_streaming_response.content(file_id) as response:
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise _too_big(file_id, received, max_bytes)
                    out.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return info
