"""Training data for the engine: read chat JSONL, encode with the model's template, resolve "auto", pack rows.

Tool definitions, calls and results are rendered by app.engine.tool_format; an assistant turn's calls are part of
what it is trained to write.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.tokenizer import encode_chat
from app.engine.tool_format import record_tools

MAX_EXAMPLE_TOKENS = 2048  # longer chats are cut (with a warning): memory, and SmolLM2's sweet spot
BASE_LEARNING_RATE = 1e-3  # LoRA learning rate at learning_rate_multiplier == 1


class DataError(ValueError):
    """A training or validation file the engine cannot use; the message names the line."""


@dataclass
class Example:
    """One encoded chat: token ids and, per token, whether it is a trained target."""

    input_ids: list[int]
    trained: list[bool]
    line: int = -1  # 0-based index of its record among the file's non-blank lines (-1: not from a file)

    @property
    def n_trained(self) -> int:
        """Trained target tokens (each predicts from the tokens before it)."""
        return sum(self.trained[1:])


@dataclass
class Dataset:
    """Encoded examples plus the counts reported to the user."""

    examples: list[Example]
    total_tokens: int
    trained_tokens: int
    truncated: int


def read_records(path: Path, problem: Callable[[Any], str | None]) -> list[dict]:
    """The records of a JSONL file (blank lines skipped); DataError with the line number for invalid JSON and for a
    record `problem` says is unusable (its words follow "Line N of FILE "), and for a file without records."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"The file {path.name} does not exist.")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"Line {number} of {path.name} is not valid JSON ({exc.msg}).") from None
            why = problem(record)
            if why:
                raise DataError(f"Line {number} of {path.name} {why}.")
            records.append(record)
    if not records:
        raise DataError(f"The file {path.name} has no examples.")
    return records


def _chat_problem(record: Any) -> str | None:
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "has no list of messages"
    if not any(m.get("role") == "assistant" and m.get("weight", 1) != 0 for m in messages):
        return "has no assistant message to learn from"
    return None


def read_jsonl(path: Path) -> list[dict]:
    """Chat records from a JSONL file; DataError (with the line number) for anything unusable."""
    return read_records(path, _chat_problem)


def encode_dataset(tokenizer, records: list[dict], max_tokens: int | None = None) -> Dataset:
    """Encode every record with its tools; cut chats over max_tokens (None: MAX_EXAMPLE_TOKENS); drop untrainables."""
    max_tokens = MAX_EXAMPLE_TOKENS if max_tokens is None else max_tokens
    examples, total, truncated = [], 0, 0
    for line, record in enumerate(records):
        encoded = encode_chat(tokenizer, record["messages"], record_tools(record))
        ids, trained = encoded.input_ids, encoded.trained
        if len(ids) > max_tokens:
            ids, trained, truncated = ids[:max_tokens], trained[:max_tokens], truncated + 1
        total += len(ids)
        example = Example(ids, trained, line)
        if example.n_trained:
            examples.append(example)
    return Dataset(examples, total, sum(e.n_trained for e in examples), truncated)


def resolve_hyperparameters(requested: dict, n_examples: int) -> dict:
    """Replace every "auto" (or missing) value with a concrete one suited to the dataset size."""
    values = dict(requested or {})

    def given(key):
        value = values.get(key, "auto")
        return None if value in (None, "auto") else value

    n = max(1, n_examples)
    n_epochs = given("n_epochs")
    if n_epochs is None:
        # The OpenAI cookbook's rule: 3 epochs, more for tiny datasets, fewer for huge ones.
        n_epochs = 3
        if n * 3 < 100:
            n_epochs = min(25, 100 // n)
        elif n * 3 > 25000:
            n_epochs = max(1, 25000 // n)
    batch_size = given("batch_size")
    if batch_size is None:
        # Small datasets need many small steps to learn; large ones get bigger batches for throughput.
        batch_size = min(16, max(1, n // 32))
    multiplier = given("learning_rate_multiplier")
    if multiplier is None:
        multiplier = 1.0 if n >= 64 else 2.0
    rank = given("lora_rank")
    if rank is None:
        rank = 16
    try:
        resolved = {
            "n_epochs": int(n_epochs),
            "batch_size": int(batch_size),
            "learning_rate_multiplier": float(multiplier),
            "lora_rank": int(rank),
        }
    except (TypeError, ValueError):
        raise DataError(f'Hyperparameters must be numbers or "auto", got {requested!r}.') from None
    bad = [k for k, v in resolved.items() if v <= 0]
    if bad:
        raise DataError(f"Hyperparameters must be positive: {', '.join(bad)}.")
    resolved["batch_size"] = min(resolved["batch_size"], n)
    return resolved


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    """Optimizer steps in one pass over the data."""
    return math.ceil(n_examples / batch_size)


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Example indices of each step of an epoch, in an order fixed by (seed, epoch) so a resume sees the same."""
    order = list(range(n_examples))
    random.Random(seed * 1000003 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]


def pack(examples: list[Example], row_tokens: int) -> list[tuple[list[int], list[int], list[bool]]]:
    """Pack examples into rows of at most row_tokens (longer ones alone): (ids, position ids, trained) per row.

    Positions restart at 0 for each example, which makes the attention mask block-diagonal: no example sees
    another, and no padding is ever computed.
    """
    rows: list[tuple[list[int], list[int], list[bool]]] = []
    ids: list[int] = []
    pos: list[int] = []
    trained: list[bool] = []
    for example in sorted(examples, key=lambda e: -len(e.input_ids)):
        if ids and len(ids) + len(example.input_ids) > row_tokens:
            rows.append((ids, pos, trained))
            ids, pos, trained = [], [], []
        ids = ids + example.input_ids
        pos = pos + list(range(len(example.input_ids)))
        # The first token of each example predicts nothing from the previous example.
        trained = [*trained, False, *example.trained[1:]]
    if ids:
        rows.append((ids, pos, trained))
    return rows


def segment_lengths(positions: list[int]) -> tuple[int, ...]:
    """Lengths of the examples of a packed row, from its position ids (each example restarts at 0)."""
    starts = [i for i, position in enumerate(positions) if position == 0]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return tuple(end - start for start, end in zip(starts, [*starts[1:], len(positions)], strict=True))
