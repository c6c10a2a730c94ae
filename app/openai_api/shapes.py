"""Pure functions that turn Tuneboard's rows into the exact JSON shapes of OpenAI's API (see openai.types)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from app.errors import Invalid
from app.providers.base import HYPERPARAMETERS
from app.tables.common import unix

T = TypeVar("T")

ORGANIZATION_ID = "org-tuneboard"
# OpenAI's job objects list the hyperparameters in alphabetical order.
OPENAI_HYPERPARAMETERS = tuple(sorted(HYPERPARAMETERS))
CHECKPOINT_METRICS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
# OpenAI's event levels are info/warn/error; Tuneboard's worker may write the longer spelling.
EVENT_LEVELS = {"warning": "warn", "warn": "warn", "error": "error", "info": "info", "debug": "info"}


def list_envelope(data: Sequence[dict], has_more: bool = False) -> dict[str, Any]:
    """OpenAI's list envelope: the SDK's cursor pages read `data` and `has_more` and page on the last id."""
    return {
        "object": "list",
        "data": list(data),
        "has_more": bool(has_more),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def page_after(items: Sequence[T], after: str | None, limit: int, key: Callable[[T], str]) -> tuple[list[T], bool]:
    """The items following the one whose key is `after` (none when it is unknown), at most `limit` of them."""
    start = 0
    if after:
        # An unknown cursor yields an empty page rather than the first one, so a client's paging loop always ends.
        start = next((index + 1 for index, item in enumerate(items) if key(item) == after), len(items))
    chunk = list(items[start : start + limit])
    return chunk, start + limit < len(items)


def metadata_filter(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """`metadata[key]=value` query parameters (OpenAI's deepObject style) as a plain dict."""
    found: dict[str, str] = {}
    for name, value in query:
        if name.startswith("metadata[") and name.endswith("]") and len(name) > len("metadata[]"):
            found[name[len("metadata[") : -1]] = value
    return found


def _ts(value: datetime | int | float | None) -> int | None:
    if value is None or isinstance(value, int | float):
        return None if value is None else int(value)
    return unix(value)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def file_object(file: Any) -> dict[str, Any]:
    """An UploadedFile as OpenAI's FileObject."""
    shaped = {
        "id": file.id,
        "object": "file",
        "bytes": int(file.bytes or 0),
        "created_at": _ts(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": file.status,
    }
    # OpenAI types these as a string and an integer: absent when there is nothing to say, never null. Files here do
    # not expire.
    if file.status_details:
        shaped["status_details"] = file.status_details
    return shaped


def file_deleted(file_id: str) -> dict[str, Any]:
    """OpenAI's FileDeleted."""
    return {"id": file_id, "object": "file", "deleted": True}


def _hyperparameters(job: Any) -> dict[str, Any]:
    stored = job.hyperparameters or {}
    if not stored and isinstance(job.method, Mapping):
        kind = job.method.get("type") or "supervised"
        stored = ((job.method.get(kind) or {}).get("hyperparameters")) or {}
    return {name: stored.get(name, "auto") for name in OPENAI_HYPERPARAMETERS}


def _method(job: Any, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    if isinstance(job.method, Mapping) and job.method.get("type"):
        method = dict(job.method)
        kind = method["type"]
        section = dict(method.get(kind) or {})
        # Report the values in force (resolved at launch) rather than "auto" once they are known.
        section["hyperparameters"] = {**(section.get("hyperparameters") or {}), **hyperparameters}
        if kind == "dpo" and "beta" in (job.hyperparameters or {}):
            section["hyperparameters"]["beta"] = job.hyperparameters["beta"]  # resolved from "auto" once it ran
        method[kind] = section
        return method
    return {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}


def _error(job: Any) -> dict[str, Any] | None:
    error = job.error
    if not error:
        return None
    if isinstance(error, str):
        return {"code": "error", "message": error, "param": None}
    return {"code": error.get("code") or "error", "message": error.get("message") or "", "param": error.get("param")}


def fine_tuning_job(job: Any) -> dict[str, Any]:
    """A Job as OpenAI's FineTuningJob (jobs launched in the dashboard included)."""
    hyperparameters = _hyperparameters(job)
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "created_at": _ts(job.created_at),
        "error": _error(job),
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": _ts(job.finished_at),
        "hyperparameters": hyperparameters,
        "model": job.model,
        "organization_id": ORGANIZATION_ID,
        "result_files": list(job.result_files or []),
        "seed": job.seed if job.seed is not None else 0,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        # A dashboard job has no /v1 file; its snapshot id is the closest stable name for what it trained on.
        "training_file": job.training_file or job.training_snapshot_id or "",
        "validation_file": job.validation_file or job.validation_snapshot_id,
        "estimated_finish": _ts(job.estimated_finish),
        "integrations": [],
        "metadata": job.metadata_ or None,
        "method": _method(job, hyperparameters),
        "user_provided_suffix": job.suffix,
    }


def job_event(event: Any) -> dict[str, Any]:
    """A JobEvent as OpenAI's FineTuningJobEvent."""
    return {
        "id": event.id,
        "object": "fine_tuning.job.event",
        "created_at": _ts(event.created_at),
        "level": EVENT_LEVELS.get(str(event.level).lower(), "info"),
        "message": event.message,
        "data": event.data if event.data is not None else {},
        "type": event.type if event.type in ("message", "metrics") else "message",
    }


def job_checkpoint(checkpoint: Any) -> dict[str, Any]:
    """A Checkpoint as OpenAI's FineTuningJobCheckpoint."""
    stored = checkpoint.metrics or {}
    metrics = {name: stored[name] for name in CHECKPOINT_METRICS if stored.get(name) is not None}
    metrics.setdefault("step", float(checkpoint.step_number))
    return {
        "id": checkpoint.id,
        "object": "fine_tuning.job.checkpoint",
        "created_at": _ts(checkpoint.created_at),
        "fine_tuned_model_checkpoint": checkpoint.fine_tuned_model_checkpoint,
        "fine_tuning_job_id": checkpoint.job_id,
        "metrics": metrics,
        "step_number": checkpoint.step_number,
    }


def model_object(info: Any) -> dict[str, Any]:
    """A model (base, tuned or checkpoint; a ModelInfo, row or mapping) as OpenAI's Model."""
    created = _get(info, "created", None)
    if created is None:
        created = _get(info, "created_at", None)
    owned_by = _get(info, "owned_by", None) or ("tuneboard" if _get(info, "kind", "") == "base" else "user")
    return {"id": _get(info, "id"), "object": "model", "created": _ts(created) or 0, "owned_by": owned_by}


def model_deleted(model_id: str) -> dict[str, Any]:
    """OpenAI's ModelDeleted."""
    return {"id": model_id, "object": "model", "deleted": True}


def unsupported_action(job: Any, action: str) -> None:
    """Refuse pause/resume in OpenAI's error shape: Tuneboard's engines cannot pause a job."""
    raise Invalid(
        f"Job {job.id} cannot be {action}: Tuneboard's engines do not support pausing. Cancel it and run it again "
        "instead.",
        code="unsupported",
        param="fine_tuning_job_id",
    )
