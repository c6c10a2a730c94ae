"""Reading OpenAI's replies without the SDK's types: a fine-tuning job as a RemoteStatus, an error's message and
code from its body. Split from openai.py, which imports the SDK and translates its errors with these."""

from __future__ import annotations

from typing import Any

from app.providers.base import RemoteStatus
from app.tables import JobStatus


def remote_status(job: Any) -> RemoteStatus:
    """A fine-tuning job object of the SDK as the provider's RemoteStatus (the method's hyperparameters first)."""
    hyper = None
    method = getattr(job, "method", None)
    section = getattr(method, getattr(method, "type", None) or "supervised", None) if method is not None else None
    if section is not None and getattr(section, "hyperparameters", None) is not None:
        hyper = section.hyperparameters.model_dump(exclude_none=True)
    elif getattr(job, "hyperparameters", None) is not None:
        hyper = job.hyperparameters.model_dump(exclude_none=True)
    error = job.error.model_dump() if getattr(job, "error", None) is not None else None
    return RemoteStatus(
        status=JobStatus(job.status),
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        error=error if error and error.get("message") else None,
        hyperparameters=hyper,
        result_files=list(job.result_files or []),
        estimated_finish=job.estimated_finish,
    )


def error_message(exc: Any) -> str:
    """The message of an SDK error: its body's error.message, else the exception's own."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


def error_code(exc: Any) -> str | None:
    """The code of an SDK error: the exception's, else its body's error.code (None: neither)."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return getattr(exc, "code", None) or (inner.get("code") if isinstance(inner, dict) else None)
