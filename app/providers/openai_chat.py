"""Chat with an OpenAI model: the request made from Tuneboard's messages and ChatParams, and OpenAI's streamed
chunks read back as ChatChunk objects (text deltas, tool-call deltas, finish_reason and usage on the last).

No SDK import here: app/providers/openai.py makes the call and hands over the stream (its items are the SDK's
ChatCompletionChunk objects, read by attribute).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from app.engine.chat_types import ChatChunk

SAMPLING = ("temperature", "top_p", "max_tokens", "stop", "seed")


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as OpenAI takes it: an assistant turn that only calls tools has null content, and a tool result
    carries no `name` (Tuneboard adds the called function's name for its own models' chat format)."""
    if message.get("role") == "assistant" and message.get("tool_calls") and not message.get("content"):
        return {**message, "content": None}
    if message.get("role") == "tool" and "name" in message:
        return {key: value for key, value in message.items() if key != "name"}
    return message


def chat_request(model: Any, messages: list[dict[str, Any]], params: Any) -> dict[str, Any]:
    """The keyword arguments of `client.chat.completions.create` for a streamed chat."""
    kwargs: dict[str, Any] = {
        "model": str(getattr(model, "name", model)),
        "messages": [_message(message) for message in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for key in SAMPLING:
        value = getattr(params, key, None)
        if value is not None:
            kwargs["max_completion_tokens" if key == "max_tokens" else key] = value
    tools = getattr(params, "tools", None)
    if tools:
        kwargs["tools"] = tools
        if getattr(params, "tool_choice", None) is not None:
            kwargs["tool_choice"] = params.tool_choice
        if getattr(params, "parallel_tool_calls", True) is False:
            kwargs["parallel_tool_calls"] = False  # OpenAI refuses it without tools, and true is its default
    if getattr(params, "response_format", None):
        kwargs["response_format"] = params.response_format
    return kwargs


def _tool_call_delta(delta: Any) -> dict[str, Any]:
    """One SDK ChoiceDeltaToolCall as ChatChunk.tool_calls holds it (only the fields it carries)."""
    out: dict[str, Any] = {"index": delta.index}
    if getattr(delta, "id", None):
        out["id"] = delta.id
    if getattr(delta, "type", None):
        out["type"] = delta.type
    function = getattr(delta, "function", None)
    part: dict[str, Any] = {"arguments": (getattr(function, "arguments", None) or "") if function else ""}
    if function is not None and getattr(function, "name", None):
        part["name"] = function.name
    out["function"] = part
    return out


def chat_chunks(stream: Iterable[Any]) -> Iterator[ChatChunk]:
    """OpenAI's stream as ChatChunk objects; the last carries finish_reason and usage."""
    finish = None
    for chunk in stream:
        if chunk.choices:
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            delta = choice.delta
            text = (delta.content or "") if delta else ""
            calls = [_tool_call_delta(call) for call in (getattr(delta, "tool_calls", None) or [])] if delta else []
            if text or calls:
                yield ChatChunk(text=text, tool_calls=calls or None)
        if chunk.usage is not None:
            usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
                "total_tokens": chunk.usage.total_tokens,
            }
            yield ChatChunk(text="", finish_reason=finish or "stop", usage=usage)
            return
    yield ChatChunk(text="", finish_reason=finish or "stop")
