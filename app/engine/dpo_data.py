"""Preference (DPO) training data: read OpenAI's DPO JSONL, encode each pair as two chats, pack pairs into rows.

A line is `{"input": {"messages": [...], "tools": [...]}, "preferred_output": [assistant message],
"non_preferred_output": [assistant message]}`. Each pair becomes two chats, the input followed by one answer; only
that answer's tokens are scored (assistant turns inside the input are context, never trained).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.data import MAX_EXAMPLE_TOKENS, DataError, Example, read_records, resolve_hyperparameters
from app.engine.tokenizer import encode_chat
from app.engine.tool_format import record_tools

OUTPUTS = ("preferred_output", "non_preferred_output")


@dataclass
class Pair:
    """One preference: the same input answered the preferred way (chosen) and the other way (rejected)."""

    chosen: Example
    rejected: Example

    @property
    def n_tokens(self) -> int:
        """Tokens of both chats."""
        return len(self.chosen.input_ids) + len(self.rejected.input_ids)


@dataclass
class PairSet:
    """Encoded pairs plus the counts reported to the user (both chats of a pair count, as OpenAI bills them)."""

    pairs: list[Pair]
    total_tokens: int
    trained_tokens: int
    truncated: int


def _problem(record: object) -> str | None:
    """Why a parsed line is not a usable DPO example, or None."""
    if not isinstance(record, dict):
        return "is not a JSON object"
    given = record.get("input")
    messages = given.get("messages") if isinstance(given, dict) else None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "has no input.messages list"
    for key in OUTPUTS:
        output = record.get(key)
        if not isinstance(output, list) or len(output) != 1 or not isinstance(output[0], dict):
            return f"needs {key} as a list of one assistant message"
        if output[0].get("role") != "assistant":
            return f"has a {key} whose message is not an assistant message"
    return None


def read_preference_jsonl(path: Path) -> list[dict]:
    """DPO records from a JSONL file; DataError (with the line number) for anything unusable."""
    return read_records(path, _pair_problem)


def _pair_problem(record: Any) -> str | None:
    why = _problem(record)
    if why and isinstance(record, dict) and "messages" in record and "input" not in record:
        return "is a chat example, not a preference pair (a DPO job needs a preference dataset)"
    return why


def answer_chat(record: dict, key: str) -> tuple[list[dict], list[dict] | None]:
    """(messages, tools) of the input followed by one of the answers; only the answer has weight."""
    given = record["input"]
    context = [{**m, "weight": 0} if m.get("role") == "assistant" else m for m in given["messages"]]
    answer = {k: v for k, v in record[key][0].items() if k != "weight"}
    return [*context, answer], record_tools(given)


def _encode(tokenizer, record: dict, key: str, max_tokens: int) -> tuple[Example, bool]:
    messages, tools = answer_chat(record, key)
    encoded = encode_chat(tokenizer, messages, tools)
    ids, trained = encoded.input_ids, encoded.trained
    cut = len(ids) > max_tokens
    if cut:
        ids, trained = ids[:max_tokens], trained[:max_tokens]
    return Example(ids, trained), cut


def encode_pairs(tokenizer, records: list[dict], max_tokens: int | None = None) -> PairSet:
    """Encode every record's two chats; cut chats over max_tokens; drop pairs where either answer lost all tokens."""
    max_tokens = MAX_EXAMPLE_TOKENS if max_tokens is None else max_tokens
    pairs: list[Pair] = []
    total = truncated = 0
    for record in records:
        chosen, cut_chosen = _encode(tokenizer, record, OUTPUTS[0], max_tokens)
        rejected, cut_rejected = _encode(tokenizer, record, OUTPUTS[1], max_tokens)
        truncated += cut_chosen or cut_rejected
        pair = Pair(chosen, rejected)
        total += pair.n_tokens
        if chosen.n_trained and rejected.n_trained:
            pairs.append(pair)
    trained = sum(p.chosen.n_trained + p.rejected.n_trained for p in pairs)
    return PairSet(pairs, total, trained, truncated)


def pair_rows(indices: list[int], pairs: list[Pair], row_tokens: int) -> list[list[int]]:
    """Pair indices grouped into rows of at most row_tokens (a longer pair alone); a pair never spans two rows,
    so each row's preference loss is complete and its backward can run before the next row is computed."""
    rows: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in sorted(indices, key=lambda i: -pairs[i].n_tokens):
        n = pairs[index].n_tokens
        if current and size + n > row_tokens:
            rows.append(current)
            current, size = [], 0
        current.append(index)
        size += n
    if current:
        rows.append(current)
    return rows


DEFAULT_BETA = 0.1  # DPO paper's and TRL's default: how far from the reference the tuned model may move
DPO_LEARNING_RATE_MULTIPLIER = 0.1  # of data.BASE_LEARNING_RATE: preference steps overshoot at supervised rates
DPO_MAX_AUTO_EPOCHS = 6  # the supervised rule gives tiny sets up to 25 epochs; preferences saturate long before


def resolve_dpo_hyperparameters(requested: dict, n_pairs: int) -> dict:
    """The supervised rule for the shared values (fewer epochs, a lower learning rate when "auto"), plus beta and
    sft_weight: the weight of the preferred answers' own mean token loss added to every step (0, the default: DPO
    alone; 0.1-1 keeps the model near the preferred answers' wording while it learns the preference)."""
    values = dict(requested or {})

    def given(key):
        value = values.get(key, "auto")
        return None if value in (None, "auto") else value

    resolved = resolve_hyperparameters(values, n_pairs)
    if given("n_epochs") is None:
        resolved["n_epochs"] = min(resolved["n_epochs"], DPO_MAX_AUTO_EPOCHS)
    if given("learning_rate_multiplier") is None:
        resolved["learning_rate_multiplier"] = DPO_LEARNING_RATE_MULTIPLIER
    beta, sft_weight = given("beta"), given("sft_weight")
    try:
        resolved["beta"] = DEFAULT_BETA if beta is None else float(beta)
        resolved["sft_weight"] = 0.0 if sft_weight is None else float(sft_weight)
    except (TypeError, ValueError):
        raise DataError(f'beta and sft_weight must be numbers or "auto", got {requested!r}.') from None
    if resolved["beta"] <= 0 or resolved["sft_weight"] < 0:
        raise DataError("beta must be positive and sft_weight zero or more.")
    return resolved
