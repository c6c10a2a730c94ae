"""OpenAI-compatible /v1/chat/completions, whole or streamed as server-sent chunks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.openai_api import chat as v1_chat
from app.web.rendering import SessionDep
from app.web.sse import sse_message

router = APIRouter(prefix="/v1", tags=["v1"])


# With `stream: true` the answer is server-sent events: `chat.completion.chunk` objects, then `[DONE]`.
STREAMED: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.post("/chat/completions", responses=STREAMED)
def create_chat_completion(request: Request, session: SessionDep, body: v1_chat.ChatCompletionRequest):
    """A chat completion from a base model, a tuned model or a checkpoint.

    With `tools` the answer may be tool calls (`tool_choice`, `parallel_tool_calls` as OpenAI's); send their
    results back as `tool` messages to continue. `response_format` json_object / json_schema answers are JSON that
    follows the schema: the local engine decodes under a grammar, so arguments and answers always parse.
    """
    settings, chat_engine = request.app.state.settings, request.app.state.chat_engine
    if body.stream:
        events = (sse_message(data) for data in v1_chat.stream_completion(session, settings, chat_engine, body))
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return v1_chat.create_completion(session, settings, chat_engine, body)
