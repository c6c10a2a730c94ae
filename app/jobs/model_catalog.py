"""Every model Tuneboard can chat with: local base models, tuned models, checkpoints, OpenAI's tuned models, and
the models of the OpenAI-compatible servers in `Settings.chat_servers` (vLLM, llama-server: docs/serving.md).

- list_models(session, settings) -> list[ModelInfo]
- resolve_model(session, settings, model_id) -> ResolvedModel   (NotFound "model_not_found")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.validation.modeltable import load_table
from app.engine.chat_types import ModelRef
from app.errors import NotFound
from app.providers.local import model_names
from app.settings.store import OPENAI_API_KEY, get_value
from app.tables import Checkpoint, Job, TunedModel
from app.tables.common import unix

# The model pickers' groups (playground, evals), in this order.
KIND_LABELS = {
    "base": "Base models",
    "tuned": "Tuned models",
    "checkpoint": "Checkpoints",
    "openai": "OpenAI models",
    "served": "Served models",
}


@dataclass(frozen=True)
class ModelInfo:
    """One model as listed: kind is base | tuned | checkpoint (local), openai (hosted by OpenAI) or served (on a
    chat server of Settings.chat_servers)."""

    id: str
    kind: str
    owned_by: str
    created: int
    job_id: str | None = None
    base_model: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """What chat needs: the provider name and its reference (local: an app.engine.chat_types.ModelRef; openai: the
    model id), and the options the provider takes for it (a served model: its server's base_url and api_key)."""

    id: str
    kind: str
    provider: str
    ref: Any
    base_model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


# A served model's key when its server has none: the SDK insists on one, and such servers ignore it.
NO_KEY = "none"


def _served(settings: Settings) -> dict[str, ResolvedModel]:
    """The chat servers' models by id ("<server>/<model>"), resolved: no request is made to list them."""
    out = {}
    for server in settings.chat_servers:
        key = server.api_key.get_secret_value() if server.api_key else NO_KEY
        options = {"base_url": server.base_url, "api_key": key, "server": server.name}
        for name in server.models:
            model_id = f"{server.name}/{name}"
            out[model_id] = ResolvedModel(model_id, "served", "openai", name, None, options)
    return out


def _openai_base_names(session: Session, settings: Settings) -> list[str]:
    """OpenAI's fine-tunable chat models from the model table, offered only when an OpenAI key is set."""
    if not settings.openai_api_key and not get_value(session, OPENAI_API_KEY):
        return []
    return [e["name"] for e in load_table()["models"] if e.get("provider", "openai") == "openai"]


def list_models(session: Session, settings: Settings) -> list[ModelInfo]:
    """Base models first (local, then OpenAI's when a key is set), then tuned models and checkpoints, newest first."""
    out = [
        ModelInfo(id=name, kind="base", owned_by="tuneboard", created=0, base_model=None)
        for name in model_names(settings)
    ]
    out += [
        ModelInfo(id=name, kind="openai", owned_by="openai", created=0, base_model=name)
        for name in _openai_base_names(session, settings)
    ]
    tuned = session.exec(
        select(TunedModel).where(col(TunedModel.deleted_at).is_(None)).order_by(col(TunedModel.created_at).desc())
    )
    for model in tuned:
        kind = "tuned" if model.provider == "local" else "openai"
        out.append(
            ModelInfo(
                id=model.id,
                kind=kind,
                owned_by="user" if kind == "tuned" else "openai",
                created=unix(model.created_at) or 0,
                job_id=model.job_id,
                base_model=model.base_model,
            )
        )
    rows = session.exec(
        select(Checkpoint, Job)
        .join(Job, col(Job.id) == col(Checkpoint.job_id))
        .order_by(col(Checkpoint.created_at).desc())
    )
    deleted = set(session.exec(select(TunedModel.id).where(col(TunedModel.deleted_at).is_not(None))).all())
    for cp, job in rows:
        if job.provider == "local" and not cp.path:
            continue
        # Checkpoints outlive their tuned model (as at OpenAI); say so where they are listed.
        note = "checkpoint of a deleted model" if job.fine_tuned_model in deleted else None
        out.append(
            ModelInfo(
                id=cp.fine_tuned_model_checkpoint,
                kind="checkpoint" if job.provider == "local" else "openai",
                owned_by="user" if job.provider == "local" else "openai",
                created=unix(cp.created_at) or 0,
                job_id=job.id,
                base_model=job.model,
                note=note,
            )
        )
    out += [
        ModelInfo(id=model_id, kind="served", owned_by=model_id.split("/", 1)[0], created=0)
        for model_id in _served(settings)
    ]
    return out


def resolve_model(session: Session, settings: Settings, model_id: str) -> ResolvedModel:
    """Find a model by id and say how to chat with it; NotFound when there is no such model."""
    if model_id in model_names(settings):
        return ResolvedModel(model_id, "base", "local", ModelRef(name=model_id, base_model=model_id), model_id)
    tuned = session.get(TunedModel, model_id)
    if tuned is not None and tuned.deleted_at is None:
        if tuned.provider != "local":
            return ResolvedModel(model_id, "openai", tuned.provider, model_id, tuned.base_model)
        if tuned.path:
            ref = ModelRef(name=model_id, base_model=tuned.base_model, adapter_path=settings.data_dir / tuned.path)
            return ResolvedModel(model_id, "tuned", "local", ref, tuned.base_model)
    row = session.exec(
        select(Checkpoint, Job)
        .join(Job, col(Job.id) == col(Checkpoint.job_id))
        .where(col(Checkpoint.fine_tuned_model_checkpoint) == model_id)
    ).first()
    if row is not None:
        cp, job = row
        if job.provider != "local":
            return ResolvedModel(model_id, "openai", job.provider, model_id, job.model)
        if cp.path:
            ref = ModelRef(name=model_id, base_model=job.model, adapter_path=settings.data_dir / cp.path)
            return ResolvedModel(model_id, "checkpoint", "local", ref, job.model)
    if model_id in _openai_base_names(session, settings):
        return ResolvedModel(model_id, "openai", "openai", model_id, model_id)
    served = _served(settings).get(model_id)
    if served is not None:
        return served
    raise NotFound(f"The model '{model_id}' does not exist", code="model_not_found", param="model")
