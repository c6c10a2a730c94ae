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


@dataclass
class ChatChunk:
    """A text delta; the last chunk carries finish_reason ("stop"/"length") and usage."""

    text: str
    finish_reason: str | None = None
    usage: dict | None = None


@dataclass
class Completion:
    """One finished reply of a batch: its text (cut before a stop string), why it ended ("stop", "length", or
    "error" with `error` and `error_code` saying why no reply was made) and its token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    error_code: str | None = None

    @property
    def usage(self) -> dict:
        """Token counts in OpenAI's usage shape."""
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}
