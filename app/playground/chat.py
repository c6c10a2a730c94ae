"""Chat with any model in the catalog: local ones through the engine, OpenAI's through the SDK.

stream_chat(session, settings, model_id, messages, params) -> Iterator[ChatChunk]
(app.engine.inference.ChatParams / ChatChunk; the last chunk carries finish_reason and usage).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import Session

from app.config import Settings
from app.jobs.model_catalog import resolve_model
from app.providers.registry import get_provider


def stream_chat(
    session: Session, settings: Settings, model_id: str, messages: list[dict], params=None, **provider_options
) -> Iterator:
    """Resolve the model now (NotFound raises here, before any streaming), then stream its reply."""
    resolved = resolve_model(session, settings, model_id)
    if resolved.provider != "local":
        provider_options.setdefault("engine", session.get_bind())
    provider = get_provider(resolved.provider, settings, **provider_options)
    return provider.stream_chat(resolved.ref, messages, params)
