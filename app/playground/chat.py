"""Chat with any model in the catalog: local ones through the app's chat engine, OpenAI's through the SDK.

stream_chat(session, settings, chat_engine, model_id, messages, params) -> Iterator[ChatChunk]
(app.engine.chat_types; the last chunk carries finish_reason and usage).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import Session

from app.config import Settings
from app.engine.chat_types import ChatChunk, ChatParams
from app.engine.inference import ChatEngine
from app.jobs.model_catalog import resolve_model
from app.providers.registry import get_provider


def stream_chat(
    session: Session,
    settings: Settings,
    chat_engine: ChatEngine,
    model_id: str,
    messages: list[dict],
    params: ChatParams | None = None,
) -> Iterator[ChatChunk]:
    """Resolve the model now (NotFound raises here, before any streaming), then stream its reply."""
    resolved = resolve_model(session, settings, model_id)
    # A local model chats through the app's engine (its loaded models); OpenAI's provider reads its stored key.
    options = {"chat_engine": chat_engine} if resolved.provider == "local" else {"engine": session.get_bind()}
    provider = get_provider(resolved.provider, settings, **options)
    return provider.stream_chat(resolved.ref, messages, params)
