"""Tool calls as they stream out of a model: deltas put together into whole calls, and deltas in OpenAI's shape."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from typing import Any


def call_id() -> str:
    """A fresh `call_…` id, as OpenAI names tool calls."""
    return f"call_{secrets.token_hex(12)}"


class ToolCalls:
    """The calls of one answer, put together from streamed deltas `{"index", "id"?, "type"?, "function":
    {"name"?, "arguments"?}}`: the first delta of an index starts a call, the later ones add to its arguments."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, deltas: Iterable[dict[str, Any]] | None) -> list[tuple[dict[str, Any], bool]]:
        """Take the deltas in; returns each with whether it started a new call."""
        taken = []
        for delta in deltas or ():
            index = delta.get("index")
            index = index if isinstance(index, int) and not isinstance(index, bool) else len(self._calls)
            function = delta.get("function") or {}
            call = self._calls.get(index)
            new = call is None
            if call is None:
                call = {
                    "id": delta.get("id") or call_id(),
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                }
                self._calls[index] = call
            if function.get("name") and not call["function"]["name"]:
                call["function"]["name"] = function["name"]  # a call's name comes whole, in its first delta
            call["function"]["arguments"] += function.get("arguments") or ""
            taken.append(({**delta, "index": index}, new))
        return taken

    def get(self, index: int) -> dict[str, Any]:
        """The call at `index` as put together so far."""
        return self._calls[index]

    def whole(self) -> list[dict[str, Any]]:
        """The calls in OpenAI's message shape, in the order of their indexes."""
        return [self._calls[index] for index in sorted(self._calls)]

    def finish_reason(self, finish: str | None) -> str:
        """Why the answer ended: "tool_calls" once calls were made (unless it was cut at max tokens)."""
        if self._calls and finish in (None, "stop"):
            return "tool_calls"
        return finish or "stop"


def stream_deltas(calls: ToolCalls, deltas: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The engine's deltas as OpenAI streams them: a call's first delta carries index, id, type and name (and
    arguments, "" when none yet), the later ones index and a piece of the arguments; `calls` keeps track."""
    for delta, new in calls.add(deltas):
        index = delta["index"]
        arguments = (delta.get("function") or {}).get("arguments") or ""
        if new:
            call = calls.get(index)
            name = call["function"]["name"]
            yield {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        elif arguments:
            yield {"index": index, "function": {"arguments": arguments}}
