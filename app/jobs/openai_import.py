"""Import jobs from OpenAI: the account's jobs (made elsewhere, e.g. in notebooks) become watchable jobs here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from app.config import Settings
from app.jobs.events import add_event
from app.providers.openai import OpenAIProvider
from app.tables import Job, JobStatus, TunedModel


def _time(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def import_openai_jobs(session: Session, settings: Settings, **provider_options: Any) -> int:
    """List every OpenAI fine-tuning job (all pages) and add those not known yet; returns how many were added.

    Finished jobs come with their events and tuned model; unfinished ones are left `running` without a
    heartbeat, so the next free worker takes them over and follows them (re-polling, never starting them).
    """
    provider_options.setdefault("engine", session.get_bind())
    provider = OpenAIProvider(settings, **provider_options)
    with provider:
        known = set(session.exec(select(Job.provider_job_id).where(Job.provider == "openai")))
        added = 0
        for remote in provider.list_remote_jobs():
            if remote["id"] in known:
                continue
            status = remote["_status"]
            terminal = status.status.is_terminal
            job = Job(
                provider="openai",
                provider_job_id=remote["id"],
                model=remote["model"],
                status=status.status if terminal else JobStatus.running,
                fine_tuned_model=status.fine_tuned_model,
                hyperparameters=status.hyperparameters or {},
                method=remote.get("method")
                or {"type": "supervised", "supervised": {"hyperparameters": status.hyperparameters or {}}},
                suffix=remote.get("suffix"),
                seed=remote.get("seed"),
                metadata_=remote.get("metadata"),
                trained_tokens=status.trained_tokens,
                error=status.error,
                result_files=status.result_files,
                training_file=remote.get("training_file"),
                validation_file=remote.get("validation_file"),
                created_at=_time(remote.get("created_at")) or datetime.now(UTC),
                finished_at=_time(remote.get("finished_at")),
                worker_id=None,
                heartbeat_at=None,
            )
            session.add(job)
            session.flush()
            add_event(session, job.id, f"Imported from OpenAI ({remote['id']}).", commit=False)
            if terminal:
                for ev in provider.list_remote_events(remote["id"]):
                    add_event(
                        session,
                        job.id,
                        ev.message,
                        level=ev.level,
                        type=ev.type,
                        data=ev.data,
                        event_id=ev.id,
                        created_at=ev.created_at,
                        commit=False,
                    )
                if (
                    status.status == JobStatus.succeeded
                    and status.fine_tuned_model
                    and session.get(TunedModel, status.fine_tuned_model) is None
                ):
                    session.add(
                        TunedModel(id=status.fine_tuned_model, job_id=job.id, provider="openai", base_model=job.model)
                    )
            session.commit()
            added += 1
        return added
