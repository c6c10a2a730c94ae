"""Plain JSON shapes of jobs, events and checkpoints for /api (the /v1 engineer maps to OpenAI's own)."""

from __future__ import annotations

from typing import Any

from app.tables import Checkpoint, Job, JobEvent
from app.tables.common import unix


def job_dict(job: Job) -> dict[str, Any]:
    """A job as /api returns it: OpenAI's fields (times as unix seconds) plus Tuneboard's own."""
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "status": job.status,
        "provider": job.provider,
        "provider_job_id": job.provider_job_id,
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model,
        "method": job.method,
        "hyperparameters": job.hyperparameters,
        "suffix": job.suffix,
        "seed": job.seed,
        "metadata": job.metadata_,
        "trained_tokens": job.trained_tokens,
        "error": job.error,
        "dataset_id": job.dataset_id,
        "validation_dataset_id": job.validation_dataset_id,
        "training_snapshot_id": job.training_snapshot_id,
        "validation_snapshot_id": job.validation_snapshot_id,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "result_files": job.result_files or [],
        "estimate": job.estimate,
        "eval_id": job.eval_id,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "created_at": unix(job.created_at),
        "started_at": unix(job.started_at),
        "finished_at": unix(job.finished_at),
        "estimated_finish": unix(job.estimated_finish),
    }


def event_dict(event: JobEvent) -> dict[str, Any]:
    """An event with its seq (the cursor for `after_seq` and the SSE id)."""
    return {
        "id": event.id,
        "seq": event.seq,
        "object": "fine_tuning.job.event",
        "created_at": unix(event.created_at),
        "level": event.level,
        "type": event.type,
        "message": event.message,
        "data": event.data,
    }


def checkpoint_dict(cp: Checkpoint) -> dict[str, Any]:
    """A checkpoint as OpenAI shapes it."""
    return {
        "id": cp.id,
        "object": "fine_tuning.job.checkpoint",
        "fine_tuning_job_id": cp.job_id,
        "step_number": cp.step_number,
        "fine_tuned_model_checkpoint": cp.fine_tuned_model_checkpoint,
        "metrics": cp.metrics or {},
        "created_at": unix(cp.created_at),
    }
