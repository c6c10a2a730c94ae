"""The playground: which models can be picked, streaming a reply as SSE text, saving a chat as an example."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.config import Settings
from app.datasets.examples import add_example
from app.engine.chat_types import ChatParams
from app.engine.inference import ChatEngine
from app.errors import DomainError, Invalid
from app.jobs.model_catalog import ModelInfo, list_models
from app.playground.chat import stream_chat
from app.playground.conversations import clean_messages, clean_params, column_history
from app.tables import Dataset, Example

log = logging.getLogger("tuneboard.playground")

KIND_LABELS = {"base": "Base models", "tuned": "Tuned models", "checkpoint": "Checkpoints", "openai": "OpenAI models"}


@dataclass
class ChatRequest:
    """One model's turn: its id, the messages it sees, and the sampling parameters."""

    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any]


def model_groups(session: Session, settings: Settings) -> list[tuple[str, list[ModelInfo]]]:
    """Every model that can chat, grouped by kind (base, tuned, checkpoints, OpenAI when a key is set)."""
    groups: dict[str, list[ModelInfo]] = {kind: [] for kind in KIND_LABELS}
    for model in list_models(session, settings):
        groups.setdefault(model.kind, []).append(model)
    return [(KIND_LABELS.get(kind, kind), models) for kind, models in groups.items() if models]


def parse_chat_request(body: Any) -> ChatRequest:
    """The browser's JSON: {model, column, params, messages}; the model sees only its own column's replies."""
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    model = body.get("model")
    model = model.strip() if isinstance(model, str) else ""
    if not model:
        raise Invalid("Pick a model first.", param="model")
    params = clean_params(body.get("params"))
    column = body.get("column", 0)
    if not isinstance(column, int) or not 0 <= column < 3:
        raise Invalid("column must be 0, 1 or 2.", param="column")
    messages = clean_messages(body.get("messages"))
    history = column_history(messages, column, params["system"])
    if not history or history[-1]["role"] != "user":
        raise Invalid("Write a message first: the conversation must end with your turn.", param="messages")
    return ChatRequest(model=model, messages=history, params=params)


def stream_reply(
    engine: Engine, settings: Settings, chat_engine: ChatEngine, body: Any
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The reply as server-sent events (name, data): `{"text"}` per token, then `done` (finish_reason, usage) or
    `error`; the route encodes them (app/web/sse.py).

    Blocking (the model generates in this thread): the router runs it in a worker thread.
    """
    try:
        request = parse_chat_request(body)
        params = ChatParams(
            temperature=request.params["temperature"],
            top_p=request.params["top_p"],
            max_tokens=request.params["max_tokens"],
        )
        with Session(engine) as session:
            for chunk in stream_chat(session, settings, chat_engine, request.model, request.messages, params):
                if chunk.text:
                    yield None, {"text": chunk.text}
                if chunk.finish_reason:
                    yield "done", {"finish_reason": chunk.finish_reason, "usage": chunk.usage}
                    return
        yield "done", {"finish_reason": "stop", "usage": None}
    except DomainError as exc:
        yield "error", {"message": exc.message, "code": exc.code}
    except Exception:
        # The response started with a 200 already: an `error` event is the only way left to tell the browser,
        # which otherwise sees the stream just stop. The traceback goes to the log.
        log.exception("the playground chat failed")
        yield (
            "error",
            {"message": "Tuneboard failed while answering; the server's log says why.", "code": "internal_error"},
        )


def example_record(messages_json: str, reply: str | None, system: str = "", column: int = 0) -> dict[str, Any]:
    """A training example from the playground: system message, the turns of one column, the last reply edited."""
    try:
        raw = json.loads(messages_json or "[]")
    except (ValueError, RecursionError):  # malformed, or nested deeper than json can recurse
        raise Invalid("The conversation could not be read; reload the page and try again.", param="messages") from None
    history = column_history(clean_messages(raw), column, system or "")
    if not any(m["role"] == "assistant" for m in history):
        raise Invalid("There is no reply to save yet: chat first.", param="messages")
    if reply is not None and reply.strip():
        last = max(i for i, m in enumerate(history) if m["role"] == "assistant")
        history[last] = {"role": "assistant", "content": reply}
        history = history[: last + 1]
    return {"messages": history}


def save_example(
    session: Session, dataset_id: int, split: str | None, record: dict[str, Any]
) -> tuple[Example, Dataset]:
    """Add the example to the dataset through the examples service (validated on arrival); it and its dataset."""
    example = add_example(session, dataset_id, record, split=split or None, note="from the playground")
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None  # add_example has just found it
    return example, dataset


def datasets(session: Session) -> list[Dataset]:
    """Datasets a conversation can be saved into."""
    return list(session.exec(select(Dataset).order_by(Dataset.name)))
