"""Token counts for a local model with its own tokenizer and chat template, fast enough for large datasets.

Rendering every example through the chat template and tokenizing it (tokens.count_local) is exact but slow. Here
the contents are batch-encoded by the model's fast tokenizer, and what the template adds around them (role
markers, end-of-turn tokens, a default system prompt, the generation prompt) is measured once per *shape* of
example (its roles in order, and which assistant turns are weighted 0) from an exact count of the first example
of that shape. A chat template adds the same tokens around any content of one shape, because its markers are
special tokens or newlines that the tokenizer never merges with the text next to them. Examples with tools, tool
calls or tool results vary in what the template adds: they are counted exactly, one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.engine import tool_format
from app.engine.chat_tokens import chat_tokenizer
from app.engine.tokenizer import encode_chat

Shape = tuple[tuple[str, bool], ...]
BATCH = 2048  # strings per call of the Rust tokenizer (which spreads a batch over its own threads)


class LocalCounter:
    """Counts (total, assistant, trained) tokens of chats for one local model; keeps each shape's overhead."""

    def __init__(self, settings: Any, model: str) -> None:
        self.tokenizer = chat_tokenizer(settings, model)
        self._overheads: dict[Shape, tuple[int, int, int]] = {}

    def exact(self, record: dict[str, Any]) -> tuple[int, int, int]:
        """The engine's own counts of one example (app.engine.tokenizer.encode_chat)."""
        encoded = encode_chat(self.tokenizer, record["messages"], tool_format.record_tools(record))
        return len(encoded.input_ids), sum(encoded.assistant), sum(encoded.trained)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token lengths of `texts` on their own, encoded in batches."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None) or getattr(self.tokenizer, "_tokenizer", None)
        out: list[int] = []
        for start in range(0, len(texts), BATCH):
            chunk = list(texts[start : start + BATCH])
            if backend is not None:
                out.extend(len(e.ids) for e in _encode_fast(backend)(chunk, add_special_tokens=False))
            else:  # a slow (Python) tokenizer
                out.extend(len(ids) for ids in self.tokenizer(chunk, add_special_tokens=False)["input_ids"])
        return out

    def count(self, records: Sequence[Any]) -> list[tuple[int, int, int] | None]:
        """Counts of each record; None for one the chat template cannot render (the caller falls back)."""
        results: list[tuple[int, int, int] | None] = [None] * len(records)
        planned: list[tuple[int, Shape, list[tuple[int, int]]]] = []  # (record index, shape, [(text id, kind)])
        index: dict[str, int] = {}
        for i, record in enumerate(records):
            plan = _plan(record, index)
            if plan is None:
                results[i] = self._exact_or_none(record)
            else:
                planned.append((i, *plan))
        lengths = self.lengths(list(index))
        for i, shape, parts in planned:
            content = [0, 0, 0]
            for text_id, kind in parts:
                n = lengths[text_id]
                content[0] += n
                if kind:
                    content[1] += n
                    if kind == 2:
                        content[2] += n
            overhead = self._overhead(shape, records[i], content)
            if overhead is None:
                results[i] = None
                continue
            results[i] = (content[0] + overhead[0], content[1] + overhead[1], content[2] + overhead[2])
        return results

    def _overhead(self, shape: Shape, record: Any, content: list[int]) -> tuple[int, int, int] | None:
        """What the template adds to examples of this shape, measured on the first one met."""
        known = self._overheads.get(shape)
        if known is not None:
            return known
        exact = self._exact_or_none(_as_record(record))
        if exact is None:
            return None
        measured = (exact[0] - content[0], exact[1] - content[1], exact[2] - content[2])
        self._overheads[shape] = measured
        return measured

    def _exact_or_none(self, record: Any) -> tuple[int, int, int] | None:
        record = _as_record(record)
        if not isinstance(record.get("messages"), list):
            return None
        try:
            return self.exact(record)
        except Exception:  # a template that rejects this example: the format checks say why
            return None


def _as_record(record: Any) -> dict[str, Any]:
    if isinstance(record, dict):
        return {**record, "messages": [m for m in record.get("messages") or [] if isinstance(m, dict)]}
    return {"messages": [m for m in record if isinstance(m, dict)] if isinstance(record, list) else None}


def _plan(record: Any, index: dict[str, int]) -> tuple[Shape, list[tuple[int, int]]] | None:
    """The example's shape and its contents' text ids, or None when it must be counted exactly (tools, odd parts)."""
    messages = record.get("messages") if isinstance(record, dict) else record
    if not isinstance(messages, list) or not messages:
        return None
    if isinstance(record, dict) and (record.get("tools") or record.get("functions")):
        return None
    shape: list[tuple[str, bool]] = []
    parts: list[tuple[int, int]] = []
    for message in messages:
        if not isinstance(message, dict):
            return None
        role = message.get("role")
        if not isinstance(role, str) or role in ("tool", "function"):
            return None
        if message.get("tool_calls") or message.get("function_call"):
            return None
        unweighted = role == "assistant" and message.get("weight", 1) == 0
        shape.append((role, unweighted))
        text = tool_format.content_text(message)
        if text:
            kind = (1 if unweighted else 2) if role == "assistant" else 0
            parts.append((index.setdefault(text, len(index)), kind))
    return tuple(shape), parts


def _encode_fast(backend: Any) -> Any:
    # encode_batch_fast (tokenizers >= 0.20) skips the character offsets, which counting does not need.
    return getattr(backend, "encode_batch_fast", None) or backend.encode_batch
