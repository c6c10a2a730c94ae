"""Export a dataset as OpenAI chat (or DPO) JSONL, streamed line by line, keys in a stable order."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Engine, Text, cast, func, select
from sqlmodel import Session, col

from app.datasets.datasets import get_dataset
from app.errors import Invalid
from app.tables.dataset import INPUT_EXTRA, Example

EXPORT_SPLITS = ("all", "train", "validation")
FETCH = 2000
CHUNK_BYTES = 256_000  # bytes per chunk of a streamed download: one write per line would cost a thread hop each


def _where(dataset_id: int, split: str, only_valid: bool) -> list:
    if split not in EXPORT_SPLITS:
        raise Invalid(f"Unknown split {split!r}: use all, train or validation.", param="split")
    where = [Example.dataset_id == dataset_id]
    if split != "all":
        where.append(Example.split == split)
    if only_valid:
        where.append(Example.valid == True)  # noqa: E712 (SQL, not Python)
    return where


def export_jsonl(session: Session, dataset_id: int, split: str = "all", only_valid: bool = True) -> Iterator[bytes]:
    """The dataset's examples as JSONL lines (bytes), in position order: messages, tools, then other keys (for a
    preference dataset, OpenAI's DPO lines: input, preferred_output, non_preferred_output, then other keys)."""
    dataset = get_dataset(session, dataset_id)
    where = _where(dataset_id, split, only_valid)
    if dataset.is_preference:
        return _pair_lines(session, where)
    # The JSON columns are read as text (no ORM objects, no parsing) and fetched in chunks, so memory stays
    # flat for any dataset size.
    stmt = (
        select(cast(Example.messages, Text), cast(Example.tools, Text), cast(Example.extra, Text))
        .where(*where)
        .order_by(col(Example.position), col(Example.id))
    )
    return _lines(session, stmt)


def _lines(session: Session, stmt) -> Iterator[bytes]:
    result = session.execute(stmt.execution_options(yield_per=FETCH))
    for messages, tools, extra in result:
        # The stored JSON text is spliced in as is: no parse and re-dump for the two big columns.
        parts = ['{"messages": ', messages]
        if tools is not None and tools != "null":
            parts += [', "tools": ', tools]
        if extra is not None and extra != "null":
            for key, value in json.loads(extra).items():
                parts += [", ", json.dumps(key), ": ", json.dumps(value)]
        parts.append("}\n")
        yield "".join(parts).encode("utf-8")


def _pair_lines(session: Session, where: list) -> Iterator[bytes]:
    stmt = (
        select(
            cast(Example.messages, Text),
            cast(Example.tools, Text),
            cast(Example.extra, Text),
            cast(Example.preferred_output, Text),
            cast(Example.non_preferred_output, Text),
        )
        .where(*where)
        .order_by(col(Example.position), col(Example.id))
    )
    result = session.execute(stmt.execution_options(yield_per=FETCH))
    for messages, tools, extra, preferred, rejected in result:
        others = json.loads(extra) if extra is not None and extra != "null" else {}
        held = others.pop(INPUT_EXTRA, None) if isinstance(others.get(INPUT_EXTRA), dict) else None
        parts = ['{"input": {"messages": ', messages]
        if tools is not None and tools != "null":
            parts += [', "tools": ', tools]
        for key, value in (held or {}).items():  # the input's other keys, as Example.to_record() puts them back
            if key != "messages" and (key != "tools" or tools is None or tools == "null"):
                parts += [", ", json.dumps(key), ": ", json.dumps(value)]
        parts += ['}, "preferred_output": ', _or_empty(preferred), ', "non_preferred_output": ', _or_empty(rejected)]
        for key, value in others.items():
            parts += [", ", json.dumps(key), ": ", json.dumps(value)]
        parts.append("}\n")
        yield "".join(parts).encode("utf-8")


def _or_empty(answer: str | None) -> str:
    return "[]" if answer is None or answer == "null" else answer


def count_exported(session: Session, dataset_id: int, split: str = "all", only_valid: bool = True) -> int:
    """How many examples an export with these options would hold."""
    where = _where(dataset_id, split, only_valid)
    return session.execute(select(func.count()).select_from(Example).where(*where)).scalar_one()


def export_chunks(engine: Engine, dataset_id: int, split: str = "all", only_valid: bool = True) -> Iterator[bytes]:
    """export_jsonl's lines in ~256 kB chunks, from a session of their own (a download outlives its request's)."""
    with Session(engine) as session:
        chunk: list[bytes] = []
        size = 0
        for line in export_jsonl(session, dataset_id, split, only_valid):
            chunk.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield b"".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield b"".join(chunk)
