"""The chat playground: one model or two or three side by side, streaming replies, saving chats as examples."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool

from app.playground import conversations, playground, preferences, warm
from app.web.api_types import DbIdForm
from app.web.json_body import read_json
from app.web.rendering import SessionDep, render
from app.web.sse import sse_message

router = APIRouter(tags=["playground"])


def _page(request: Request, session: Session, c: str | None, models: list[str] | None, compare: bool):
    conv = conversations.get_conversation(session, c) if c else None
    chosen = list(conv.models) if conv else [m for m in (models or []) if m]
    n = max(2, min(3, len(chosen))) if compare else 1
    groups = playground.model_groups(session, request.app.state.settings)
    ctx = {
        "conversation": conversations.as_json(conv),
        "columns": [(chosen[i] if i < len(chosen) else "") for i in range(n)],
        "params": conv.params if conv else dict(conversations.DEFAULT_PARAMS),
        "groups": groups,
        "known": {m.id for _, models in groups for m in models},
        "labels": playground.model_labels(session, groups),
        "datasets": playground.datasets(session),
        "preference_datasets": preferences.preference_datasets(session) if compare else [],
        "compare": compare,
        "pretty_arguments": playground.pretty_arguments,
        "tools_text": playground.tools_text(conv.params if conv else {}),
    }
    return render(request, "playground/index.html", ctx)


@router.get("/playground", include_in_schema=False)
def playground_page(
    request: Request, session: SessionDep, c: str | None = None, model: Annotated[list[str] | None, Query()] = None
):
    """Chat with one model; ?model= preselects it, ?c= reopens a saved conversation."""
    return _page(request, session, c, model, compare=False)


@router.get("/playground/compare", include_in_schema=False)
def compare_page(
    request: Request, session: SessionDep, c: str | None = None, model: Annotated[list[str] | None, Query()] = None
):
    """The same conversation sent to two or three models side by side."""
    return _page(request, session, c, model, compare=True)


@router.post("/playground/chat", include_in_schema=False)
async def chat(request: Request):
    """Stream one model's reply as text/event-stream (the model runs in a worker thread)."""
    body = await read_json(request, "the chat")  # unreadable JSON is refused before the stream starts
    state = request.app.state
    replies = playground.stream_reply(state.engine, state.settings, state.chat_engine, body)
    stream = (sse_message(data, event) for event, data in replies)
    return StreamingResponse(
        iterate_in_threadpool(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/playground/model-status", include_in_schema=False)
def model_status(request: Request, session: SessionDep, model: str):
    """Whether a model is loaded, and while it loads, what the load is doing (the chat's waiting text)."""
    state = request.app.state
    return JSONResponse(warm.model_status(session, state.settings, state.chat_engine, model).as_dict())


@router.post("/playground/conversations", include_in_schema=False)
async def save_new(request: Request, session: SessionDep):
    """Store the playground's state as a new conversation; returns its id."""
    conv = conversations.save_conversation(session, None, await read_json(request, "the conversation"))
    return JSONResponse({"id": conv.id}, status_code=201)


@router.put("/playground/conversations/{conversation_id}", include_in_schema=False)
async def save_existing(request: Request, conversation_id: str, session: SessionDep):
    """Replace a stored conversation with the playground's state."""
    conv = conversations.save_conversation(session, conversation_id, await read_json(request, "the conversation"))
    return JSONResponse({"id": conv.id})


@router.post("/playground/tools-check", include_in_schema=False)
def tools_check(request: Request, tools: Annotated[str, Form()] = ""):
    """The tools editor's JSON checked as a chat would check it: the functions it defines, or its first problem."""
    return render(request, "playground/_tools_check.html", {"check": playground.check_tools_text(tools)})


@router.post("/playground/save-example", include_in_schema=False)
def save_example(
    request: Request,
    session: SessionDep,
    dataset_id: DbIdForm,
    messages: Annotated[str, Form()],
    split: Annotated[str, Form()] = "",
    reply: Annotated[str, Form()] = "",
    system: Annotated[str, Form()] = "",
    column: Annotated[int, Form()] = 0,
    tools: Annotated[str, Form()] = "",
):
    """Add the conversation (reply as edited, tools and calls kept) to a dataset and show its validation problems."""
    record = playground.example_record(messages, reply, system, column, tools)
    example, dataset = playground.save_example(session, dataset_id, split, record)
    return render(request, "playground/_saved.html", {"example": example, "dataset": dataset})
