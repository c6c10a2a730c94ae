"""OpenAI chat completions over Tuneboard's chat service: request checks, the completion and its streamed chunks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from itertools import chain
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.config import Settings
from app.engine.chat_types import ChatChunk, ChatParams
from app.engine.inference import ChatEngine
from app.errors import DomainError, Invalid
from app.playground import chat_tools, tool_messages
from app.playground.chat import stream_chat
from app.playground.tool_calls import ToolCalls, stream_deltas

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
MAX_STOP = 4
_JSON_TYPES = {list: "list", dict: "object", int: "number", float: "number", bool: "boolean"}


class ChatCompletionRequest(BaseModel):
    """The body of POST /v1/chat/completions; unknown OpenAI fields (user, logprobs…) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = 1
    # OpenAI's documented range (a 64-bit integer); torch seeds from it too.
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    # Checked by app/playground/chat_tools.py, which words its refusals as OpenAI does.
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    response_format: Any = None


def _text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise Invalid("Only text content parts are supported.", param=f"messages[{index}].content")
            parts.append(part["text"])
        return "".join(parts)
    raise Invalid("content must be a string or a list of text parts.", param=f"messages[{index}].content")


def normalize_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages as the engine's chat template reads them: role and text content, with an assistant's
    tool_calls and a tool result's tool_call_id (and the called function's name) kept."""
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Invalid(f"messages[{index}] must be an object.", code="invalid_type", param=f"messages[{index}]")
        raw_role = message.get("role")
        role = ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            # Only a string is shown back: a list or object may be huge, or nested too deep to print.
            shown = repr(raw_role)[:80] if isinstance(raw_role, str | None) else f"a {_JSON_TYPES.get(type(raw_role))}"
            raise Invalid(
                f"Invalid value for 'role': {shown}. Use system, developer, user, assistant or tool.",
                param=f"messages[{index}].role",
            )
        item: dict[str, Any] = {"role": role, "content": _text(message.get("content"), index)}
        if role == "assistant" and message.get("tool_calls") is not None:
            item["tool_calls"] = tool_messages.check_tool_calls(message["tool_calls"], f"messages[{index}].tool_calls")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise Invalid(
                    f"Missing required parameter: 'messages[{index}].tool_call_id'.",
                    code="missing_required_parameter",
                    param=f"messages[{index}].tool_call_id",
                )
            item["tool_call_id"] = call_id
        out.append(item)
    tool_messages.check_tool_turns(out)
    return out


def chat_params(request: ChatCompletionRequest, messages: list[dict[str, Any]] | None = None) -> ChatParams:
    """The engine's ChatParams for a request, after OpenAI's own parameter checks (`messages`, normalized: for
    the word "json" that a json_object request needs)."""
    if request.stream_options is not None and not request.stream:
        raise Invalid(
            "stream_options is only allowed when stream is true.", code="invalid_value", param="stream_options"
        )
    if request.n not in (None, 1):
        raise Invalid("Tuneboard generates one choice per request: n must be 1.", code="invalid_value", param="n")
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    if stop is not None and len(stop) > MAX_STOP:
        raise Invalid(f"stop may hold at most {MAX_STOP} sequences.", code="invalid_value", param="stop")
    tools = chat_tools.check_tools(request.tools)
    params = ChatParams(
        stop=stop or None,
        seed=request.seed,
        tools=tools,
        tool_choice=chat_tools.check_tool_choice(request.tool_choice, tools),
        parallel_tool_calls=chat_tools.check_parallel_tool_calls(request.parallel_tool_calls, tools),
        response_format=chat_tools.check_response_format(
            request.response_format, tool_messages.mentions_json(messages or request.messages)
        ),
    )
    # Unset values keep the engine's defaults rather than overriding them with None.
    if request.temperature is not None:
        params.temperature = request.temperature
    if request.top_p is not None:
        params.top_p = request.top_p
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        params.max_tokens = max_tokens
    return params


def _usage(raw: Any) -> dict[str, int] | None:
    if raw is None:
        return None
    get = raw.get if isinstance(raw, dict) else (lambda k, d=None: getattr(raw, k, d))
    prompt, completion = int(get("prompt_tokens", 0) or 0), int(get("completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _start(
    session: Session, settings: Settings, chat_engine: ChatEngine, request: ChatCompletionRequest
) -> Iterator[ChatChunk]:
    messages = normalize_messages(request.messages)
    params = chat_params(request, messages)
    chunks = iter(stream_chat(session, settings, chat_engine, request.model, messages, params))
    # Pull the first chunk now, so an unknown model or a bad request fails with a status code, not mid-stream.
    first = next(chunks, None)
    return chunks if first is None else chain([first], chunks)


def create_completion(
    session: Session, settings: Settings, chat_engine: ChatEngine, request: ChatCompletionRequest
) -> dict[str, Any]:
    """A whole `chat.completion` object."""
    text, finish, usage, calls = [], None, None, ToolCalls()
    for chunk in _start(session, settings, chat_engine, request):
        text.append(chunk.text or "")
        calls.add(chunk.tool_calls)
        finish = chunk.finish_reason or finish
        usage = _usage(chunk.usage) or usage
    content = "".join(text)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if calls:
        # As OpenAI answers a call: no content unless the model also wrote some.
        message["content"] = content or None
        message["tool_calls"] = calls.whole()
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": calls.finish_reason(finish), "logprobs": None}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def completion_id() -> str:
    """A fresh `chatcmpl-…` id."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def stream_completion(
    session: Session, settings: Settings, chat_engine: ChatEngine, request: ChatCompletionRequest
) -> Iterator[Any]:
    """The data of the server-sent events: `chat.completion.chunk` bodies, then "[DONE]"; the route encodes them
    (app/web/sse.py). Errors before the first chunk raise."""
    chunks = _start(session, settings, chat_engine, request)
    include_usage = bool((request.stream_options or {}).get("include_usage"))
    return _sse(chunks, request.model, include_usage)


def _sse(chunks: Iterator[ChatChunk], model: str, include_usage: bool) -> Iterator[Any]:
    ident, created = completion_id(), int(time.time())

    def event(choices: list, usage: Any = None, with_usage: bool = include_usage) -> dict[str, Any]:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if with_usage:
            body["usage"] = usage
        return body

    def choice(delta: dict, finish: str | None = None) -> list:
        return [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]

    yield event(choice({"role": "assistant", "content": "", "refusal": None}))
    finish, usage, calls = None, None, ToolCalls()
    try:
        for chunk in chunks:
            if chunk.text:
                yield event(choice({"content": chunk.text}))
            if chunk.tool_calls:
                # One event per call's delta: the first names the call (id, type, name), the later ones carry
                # pieces of its arguments, as OpenAI streams them.
                for delta in stream_deltas(calls, chunk.tool_calls):
                    yield event(choice({"tool_calls": [delta]}))
            finish = chunk.finish_reason or finish
            usage = _usage(chunk.usage) or usage
    except DomainError as exc:
        # Headers are gone by now: report the failure as OpenAI does inside a stream, then end it.
        error = {"message": exc.message, "type": "server_error", "param": exc.param, "code": exc.code}
        yield {"error": error}
        return
    yield event(choice({}, calls.finish_reason(finish)))
    if include_usage:
        yield event([], usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    yield "[DONE]"
