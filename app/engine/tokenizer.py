"""Render chats with a model's own template and find which tokens belong to (trained) assistant messages."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.engine import _hf, tool_format
from app.engine.catalog import ModelSettings, resolve_base_model
from app.errors import Invalid

_tokenizers: dict[str, object] = {}
_lock = threading.Lock()


@dataclass
class EncodedChat:
    """Token ids of one rendered chat, and per token whether it is assistant text and whether it is trained."""

    input_ids: list[int]
    assistant: list[bool] = field(default_factory=list)
    trained: list[bool] = field(default_factory=list)


def load_tokenizer(path: Path):
    """The tokenizer of an HF model directory, loaded once per process."""
    key = str(Path(path).resolve())
    with _lock:
        tokenizer = _tokenizers.get(key)
        if tokenizer is None:
            _hf.prepare()
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(key)
            if not getattr(tokenizer, "chat_template", None):
                raise Invalid(f"The model at {key} has no chat template, so it cannot be used for chat.")
            _tokenizers[key] = tokenizer
    return tokenizer


def clean_messages(messages: list[dict]) -> list[dict]:
    """Messages reduced to role + text content, which every chat template understands."""
    return [{"role": m.get("role", "user"), "content": tool_format.content_text(m)} for m in messages]


def render_chat(
    tokenizer, messages: list[dict], add_generation_prompt: bool = False, *, tools: list[dict] | None = None
) -> str:
    """The chat as the model sees it, through its own chat template (tools, calls and results included)."""
    if tool_format.has_tools(messages, tools):
        return tool_format.render_chat(tokenizer, messages, tools=tools, add_generation_prompt=add_generation_prompt)
    return tokenizer.apply_chat_template(
        clean_messages(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def _prompt_before(tokenizer, messages: list[dict], tools: list[dict] | None) -> str:
    """The chat up to an assistant message, with the generation prompt that opens it."""
    if messages:
        return render_chat(tokenizer, messages, add_generation_prompt=True, tools=tools)
    if not tools:
        return ""
    try:  # a first assistant message still follows the system turn that the tools make
        return render_chat(tokenizer, [], add_generation_prompt=True, tools=tools)
    except Exception:  # a template that renders no empty chat: the span starts at the beginning, as it did
        return ""


def _assistant_spans(
    tokenizer, messages: list[dict], full: str, tools: list[dict] | None
) -> list[tuple[int, int, bool]]:
    """Character spans (start, end, trained) of each assistant message inside the rendered chat."""
    spans = []
    cursor = 0
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        trained = message.get("weight", 1) != 0
        before = _prompt_before(tokenizer, messages[:i], tools)
        after = render_chat(tokenizer, messages[: i + 1], tools=tools)
        if full.startswith(after) and after.startswith(before) and len(before) >= cursor:
            # Train the content (tool calls included) and the end-of-turn marker, not the whitespace after it.
            start, end = len(before), len(after.rstrip())
        else:  # a template that is not prefix-stable: find the content itself
            content = tool_format.assistant_text(message)
            start = full.find(content, cursor)
            if start < 0:
                continue
            end = start + len(content)
        spans.append((start, end, trained))
        cursor = end
    return spans


def encode_chat(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> EncodedChat:
    """Tokenize a whole chat with its tools and mark the tokens of assistant messages (trained when weight != 0)."""
    full = render_chat(tokenizer, messages, tools=tools)
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    spans = _assistant_spans(tokenizer, messages, full, tools)
    assistant, trained = [], []
    k = 0
    for start, end in encoded["offset_mapping"]:
        while k < len(spans) and spans[k][1] <= start:
            k += 1
        inside = k < len(spans) and end > spans[k][0] and start < spans[k][1]
        assistant.append(inside)
        trained.append(inside and spans[k][2])
    return EncodedChat(list(encoded["input_ids"]), assistant, trained)


def count_chat_tokens(
    settings: ModelSettings, model_name: str, messages: list[dict], tools: list[dict] | None = None
) -> dict:
    """Token counts of a chat (with its tool definitions) for a local model: {"total", "assistant", "trained"}."""
    tokenizer = load_tokenizer(resolve_base_model(settings, model_name))
    encoded = encode_chat(tokenizer, messages, tools)
    return {"total": len(encoded.input_ids), "assistant": sum(encoded.assistant), "trained": sum(encoded.trained)}
