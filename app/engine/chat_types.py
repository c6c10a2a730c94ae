"""What a chat is made of, shared by the providers and the engine: no torch, no pydantic, cheap to import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelRef:
    """What to chat with: a base model name and, for a tuned model or checkpoint, its adapter directory."""

    name: str
    base_model: str
    adapter_path: Path | None = None


@dataclass
class ChatParams:
    """Sampling parameters, as in OpenAI's chat completions."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] | str | None = None
    seed: int | None = None
    # Tool calling and structured outputs, in OpenAI's shapes: tools are {"type": "function", "function": {...}};
    # tool_choice is "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}};
    # response_format is {"type": "text" | "json_object" | "json_schema", "json_schema": {"name", "schema", "strict"}}.
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool = True
    response_format: dict | None = None


@dataclass
class ChatChunk:
    """A text delta and/or tool-call deltas; the last chunk carries finish_reason ("stop"/"length"/"tool_calls") and
    usage.

    tool_calls are in OpenAI's streaming shape: [{"index": i, "id"?, "type"?: "function", "function": {"name"?,
    "arguments": "<part>"}}] (the first delta of a call carries its id, type and name)."""

    text: str
    finish_reason: str | None = None
    usage: dict | None = None
    tool_calls: list[dict] | None = None


@dataclass
class Completion:
    """One finished reply of a batch: its text (cut before a stop string), why it ended ("stop", "length",
    "tool_calls", or "error" with `error` and `error_code` saying why no reply was made), its token counts and its
    tool calls (whole, in OpenAI's shape {"id", "type": "function", "function": {"name", "arguments"}}) if any."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    error_code: str | None = None
    tool_calls: list[dict] | None = None

    @property
    def usage(self) -> dict:
        """Token counts in OpenAI's usage shape."""
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}
