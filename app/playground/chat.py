"""Chat with any model in the catalog: local ones through the app's chat engine, OpenAI's through the SDK.

stream_chat(session, settings, chat_engine, model_id, messages, params) -> Iterator[ChatChunk]
(app.engine.chat_types; the last chunk carries finish_reason and usage).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

from sqlmodel import Session

from app.config import Settings
from app.engine.chat_types import ChatChunk, ChatParams
from app.engine.inference import ChatEngine
from app.errors import DomainError, Upstream
from app.jobs.model_catalog import resolve_model
from app.providers.base import Provider
from app.providers.registry import get_provider

log = logging.getLogger("tuneboard.chat")

# Colder than this, sampling is greedy decoding (what temperature 0 asks for) in all but name, and dividing the
# logits by it overflows float32: 1e-320 is even a denormal that rounds to 0 there. Such values are sent as 0.
MIN_TEMPERATURE = 1e-6


def stream_chat(
    session: Session,
    settings: Settings,
    chat_engine: ChatEngine,
    model_id: str,
    messages: list[dict],
    params: ChatParams | None = None,
) -> Iterator[ChatChunk]:
    """Resolve the model now (NotFound raises here, before any streaming), then stream its reply.

    A failure of the model or its provider while answering (a model that does not load, OpenAI down) is raised as
    an Upstream error worded for people, never as whatever the library threw.
    """
    resolved = resolve_model(session, settings, model_id)
    # A local model chats through the app's engine (its loaded models); OpenAI's provider reads its stored key.
    options = {"chat_engine": chat_engine} if resolved.provider == "local" else {"engine": session.get_bind()}
    options.update(resolved.options)  # a served model's server address and key
    provider = get_provider(resolved.provider, settings, **options)
    if params is not None and 0 < params.temperature < MIN_TEMPERATURE:
        params = dataclasses.replace(params, temperature=0.0)
    return _reported(provider, provider.stream_chat(resolved.ref, messages, params), model_id)


def _reported(provider: Provider, chunks: Iterator[ChatChunk], model_id: str) -> Iterator[ChatChunk]:
    try:
        yield from chunks
    except DomainError:
        raise
    except Exception as exc:
        log.exception("chat with %s failed", model_id)
        raise Upstream(
            f"The model {model_id} failed while answering: {type(exc).__name__}: {exc}".rstrip(": "),
            code="model_failed",
        ) from exc
    finally:
        provider.close()  # the stream is over: the OpenAI client's connections go with it
