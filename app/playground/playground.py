"""The playground: which models can be picked, streaming a reply as SSE text, saving a chat as an example."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.examples import add_example
from app.engine.chat_types import ChatParams
from app.engine.inference import ChatEngine
from app.errors import DomainError, Invalid
from app.jobs import naming
from app.jobs.model_catalog import KIND_LABELS, ModelInfo, list_models
from app.playground.chat import stream_chat
from app.playground.conversations import clean_messages, clean_params, clean_tools, column_history
from app.playground.tool_calls import ToolCalls, stream_deltas
from app.playground.tool_messages import check_tool_turns
from app.tables import Dataset, Example
from app.tables.dataset import PREFERENCE

log = logging.getLogger("tuneboard.playground")


@dataclass
class ChatRequest:
    """One model's turn: its id, the messages it sees, and the sampling parameters."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]

    def chat_params(self) -> ChatParams:
        """The engine's parameters: sampling, and the tools when the person defined some."""
        tools = self.params.get("tools") or None
        return ChatParams(
            temperature=self.params["temperature"],
            top_p=self.params["top_p"],
            max_tokens=self.params["max_tokens"],
            tools=tools,
            tool_choice=self.params.get("tool_choice", "auto") if tools else None,
        )


def model_groups(session: Session, settings: Settings) -> list[tuple[str, list[ModelInfo]]]:
    """Every model that can chat, grouped by kind (base, tuned, checkpoints, OpenAI when a key is set)."""
    groups: dict[str, list[ModelInfo]] = {kind: [] for kind in KIND_LABELS}
    for model in list_models(session, settings):
        groups.setdefault(model.kind, []).append(model)
    return [(KIND_LABELS.get(kind, kind), models) for kind, models in groups.items() if models]


def model_labels(session: Session, groups: list[tuple[str, list[ModelInfo]]]) -> dict[str, str]:
    """The picker's labels: friendly names of tuned models and checkpoints by id (base models keep their names)."""
    return naming.model_names(session, [m.id for _, models in groups for m in models if m.kind != "base"])


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
    if not history or history[-1]["role"] not in ("user", "tool"):
        raise Invalid(
            "Write a message first: the conversation must end with your turn.",
            param="messages",
        )
    check_tool_turns(history)
    return ChatRequest(model=model, messages=history, params=params)


def stream_reply(
    engine: Engine, settings: Settings, chat_engine: ChatEngine, body: Any
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The reply as server-sent events (name, data): `{"text"}` per token, `{"tool_calls": [delta]}` per piece of
    a tool call (OpenAI's streaming shape), then `done` (finish_reason, usage, the whole tool_calls) or `error`; the
    route encodes them (app/web/sse.py).

    Blocking (the model generates in this thread): the router runs it in a worker thread.
    """
    try:
        request = parse_chat_request(body)
        params = request.chat_params()
        calls = ToolCalls()
        with Session(engine) as session:
            for chunk in stream_chat(session, settings, chat_engine, request.model, request.messages, params):
                if chunk.text:
                    yield None, {"text": chunk.text}
                for delta in stream_deltas(calls, chunk.tool_calls or []):
                    yield None, {"tool_calls": [delta]}
                if chunk.finish_reason:
                    yield "done", _done(calls, chunk.finish_reason, chunk.usage)
                    return
        yield "done", _done(calls, None, None)
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


def _done(calls: ToolCalls, finish: str | None, usage: Any) -> dict[str, Any]:
    done: dict[str, Any] = {"finish_reason": calls.finish_reason(finish), "usage": usage}
    if calls:
        done["tool_calls"] = calls.whole()
    return done


def example_record(
    messages_json: str, reply: str | None, system: str = "", column: int = 0, tools: str = ""
) -> dict[str, Any]:
    """A training example from the playground: system message, the turns of one column (tool calls and results
    kept), the last reply edited, and the tools the model was given."""
    try:
        raw = json.loads(messages_json or "[]")
    except (ValueError, RecursionError):  # malformed, or nested deeper than json can recurse
        raise Invalid("The conversation could not be read; reload the page and try again.", param="messages") from None
    history = column_history(clean_messages(raw), column, system or "")
    if not any(m["role"] == "assistant" for m in history):
        raise Invalid("There is no reply to save yet: chat first.", param="messages")
    if reply is not None and reply.strip():
        last = max(i for i, m in enumerate(history) if m["role"] == "assistant")
        # The edited text replaces the reply's words; calls it made stay.
        history[last] = {**history[last], "content": reply}
        history = history[: last + 1]
    record: dict[str, Any] = {"messages": history}
    checked = clean_tools(tools)
    if checked:
        record["tools"] = checked
    return record


def pretty_arguments(arguments: str) -> str:
    """A call's JSON arguments indented for reading (as they are, when they are not JSON)."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return arguments


def tools_text(params: dict[str, Any]) -> str:
    """The tools editor's text for stored parameters: their tools as indented JSON, "" when there are none."""
    tools = params.get("tools") or []
    return json.dumps(tools, indent=2, ensure_ascii=False) if tools else ""


@dataclass
class ToolsCheck:
    """What the tools editor holds: the functions it defines, or why it can't be used."""

    names: list[str]
    error: str | None = None


def check_tools_text(text: str) -> ToolsCheck:
    """Check the tools editor's JSON as a chat would (never raises: the page shows the problem)."""
    try:
        tools = clean_tools(text)
    except Invalid as exc:
        where = f" ({exc.param})" if exc.param and exc.param != "tools" else ""
        return ToolsCheck([], exc.message + where)
    return ToolsCheck([tool["function"]["name"] for tool in tools])


def save_example(
    session: Session, dataset_id: int, split: str | None, record: dict[str, Any]
) -> tuple[Example, Dataset]:
    """Add the example to the dataset through the examples service (validated on arrival); it and its dataset."""
    example = add_example(session, dataset_id, record, split=split or None, note="from the playground")
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None  # add_example has just found it
    return example, dataset


def datasets(session: Session) -> list[Dataset]:
    """Datasets a conversation can be saved into (supervised ones: a preference dataset takes pairs instead)."""
    query = select(Dataset).where(col(Dataset.kind) != PREFERENCE)
    return list(session.exec(query.order_by(col(Dataset.name))))
