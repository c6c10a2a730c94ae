"""A stand-in for the app's ChatEngine that answers every chat with chunks written in advance (tool calls
included), and keeps the messages and ChatParams it was given: tests of the API and the playground that must not
depend on what a model happens to say."""

from __future__ import annotations

import json
from collections.abc import Iterator

from app.engine.chat_types import ChatChunk, ChatParams, ModelRef

USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}


def call_chunks(*calls: tuple[str, dict], text: str = "", pieces: int = 3) -> list[ChatChunk]:
    """The chunks of an answer that (after `text`, if any) calls each (name, arguments) in turn, as the engine
    streams them: a call's first delta names it, the next ones carry its arguments in `pieces` parts."""
    chunks = [ChatChunk(text)] if text else []
    for index, (name, arguments) in enumerate(calls):
        first = {"index": index, "id": f"call_{index:024x}", "type": "function", "function": {"name": name}}
        chunks.append(ChatChunk("", tool_calls=[first]))
        encoded = json.dumps(arguments)
        size = -(-len(encoded) // pieces)
        for start in range(0, len(encoded), size):
            part = encoded[start : start + size]
            chunks.append(ChatChunk("", tool_calls=[{"index": index, "function": {"arguments": part}}]))
    chunks.append(ChatChunk("", finish_reason="tool_calls" if calls else "stop", usage=dict(USAGE)))
    return chunks


class ScriptedChatEngine:
    """Answers with `chunks` (the next script of `scripts` when several are queued); `asked` keeps each chat."""

    def __init__(self, *scripts: list[ChatChunk]):
        self.scripts = list(scripts)
        self.asked: list[tuple[ModelRef, list[dict], ChatParams | None]] = []

    def stream_chat(
        self, ref: ModelRef, messages: list[dict], params: ChatParams | None = None, should_stop=None
    ) -> Iterator[ChatChunk]:
        """The next script's chunks (the last script repeats)."""
        self.asked.append((ref, messages, params))
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        yield from script

    def is_loaded(self, ref: ModelRef) -> bool:
        """Always ready: there is nothing to load."""
        return True

    def load_progress(self, ref: ModelRef) -> None:
        """No load is ever under way."""
        return None

    def preload(self, ref: ModelRef) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to free."""
