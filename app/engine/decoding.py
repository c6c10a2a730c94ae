"""What turns a model into a reply, shared by streamed chat (inference.py) and batched generation
(batch_generate.py): the Hugging Face step, sampling, incremental detokenization, stop strings. Torch loads with the
first call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.engine.chat_types import ChatParams

Step = Callable[[list[int]], Any]  # token ids in (the prompt, then one at a time), next-token logits out


def stop_list(stop) -> list[str]:
    """The non-empty stop strings of a `stop` parameter (one string, a list, or None)."""
    if stop is None:
        return []
    return [s for s in ([stop] if isinstance(stop, str) else stop) if s]


def held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters might still become a stop string (or finish a multi-byte character)."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    if text.endswith("\ufffd"):  # bytes of a character still arriving
        hold = max(hold, len(text) - len(text.rstrip("\ufffd")))
    return hold


class Detokenizer:
    """The reply's text so far, decoding only the last few tokens per step (re-decoding the whole reply each token
    is quadratic). A piece is taken once it ends in whole characters; the window starts a token back so tokenizers
    that drop a leading space at the start of a decode still see their context."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""
        self._prefix = self._read = 0  # ids[_prefix:_read] is context already in text; ids[_read:] are pending

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token: int) -> str:
        """Append a token; returns the text so far, with pending bytes of an unfinished character shown as U+FFFD."""
        self.ids.append(token)
        context = self._decode(self.ids[self._prefix : self._read])
        window = self._decode(self.ids[self._prefix :])
        if window.endswith("\ufffd"):
            return self.text + window[len(context) :]
        if len(window) > len(context):
            self.text += window[len(context) :]
            self._prefix, self._read = self._read, len(self.ids)
        return self.text


def next_token(logits, params: ChatParams, generator) -> int:
    """The next token from next-token logits: argmax at temperature 0, else sampled (top_p, seeded generator)."""
    import torch

    if params.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # Keep the smallest set whose mass reaches top_p (the first token always stays).
        drop = cumulative - sorted_probs > params.top_p
        sorted_probs[drop] = 0.0
        choice = torch.multinomial(sorted_probs, 1, generator=generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=generator))


def hf_steps(model) -> Step:
    """The step function of a Hugging Face model (architectures the CPU decoder does not cover), with its KV cache."""
    import inspect

    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    # Newer transformers name the argument `cache` (warning on the old `past_key_values`); older ones only know that.
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def step(ids: list[int]):
        out = model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1, **{key: cache})
        return out.logits[0, -1]

    return step
