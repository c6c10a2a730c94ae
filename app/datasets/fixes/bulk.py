"""Preview and apply a rewrite fix over a dataset's examples (or some of them) as one undoable step."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.datasets import validation
from app.datasets.datasets import get_dataset, touch_dataset
from app.datasets.fixes.catalog import Fix
from app.datasets.fixes.masking import partly_hidden
from app.datasets.fixes.revisions import record_revision, snapshot
from app.errors import Invalid
from app.tables.common import stored_id, utcnow
from app.tables.dataset import EXAMPLES, Example

# The columns that hold message lists: a supervised example's conversation, a preference example's two answers.
MESSAGE_COLUMNS = ("messages", "preferred_output", "non_preferred_output")
CHUNK = 500  # examples loaded at a time
SAMPLES = 5  # before/after diffs a preview shows
CONTEXT = 50  # characters kept before the first difference
WIDTH = 160  # characters shown after it
VISIBLE = {" ": "␣", "\t": "⇥", "\n": "↵", "\r": "␍"}


@dataclass
class Change:
    """One changed message of an example: where, and its text before and after (cut around the difference)."""

    where: str
    before: str
    after: str


@dataclass
class ExampleDiff:
    """An example a fix changes and how."""

    example_id: int
    position: int
    changes: list[Change] = field(default_factory=list)


@dataclass
class Preview:
    """What a fix would do: how many examples change out of how many, and the first few diffs."""

    fix: Fix
    n_examples: int = 0
    n_changed: int = 0
    diffs: list[ExampleDiff] = field(default_factory=list)
    # Set for the near-duplicate fix: how many clusters there are.
    n_clusters: int | None = None


@dataclass
class Applied:
    """What a step did: the sentence to show, how many examples it changed, and its revision (None: nothing)."""

    message: str
    n_changed: int = 0
    revision_id: int | None = None


def clean_ids(ids: Iterable[Any] | None) -> list[int] | None:
    """Example ids from outside as sorted whole numbers (None: every example)."""
    if ids is None:
        return None
    try:
        return sorted({int(i) for i in ids})
    except (TypeError, ValueError) as exc:
        raise Invalid("Example ids must be whole numbers.", param="example_ids") from exc


def examples_in_chunks(session: Session, dataset_id: int, ids: list[int] | None = None) -> Iterator[list[Example]]:
    """The dataset's examples (or those of `ids`), in order, a chunk at a time."""
    query = select(col(Example.id)).where(col(Example.dataset_id) == dataset_id)
    if ids is not None:
        query = query.where(col(Example.id).in_(ids))
    order = list(session.exec(query.order_by(col(Example.position), col(Example.id))))
    for start in range(0, len(order), CHUNK):
        chunk = order[start : start + CHUNK]
        rows = {stored_id(e): e for e in session.exec(select(Example).where(col(Example.id).in_(chunk)))}
        yield [rows[i] for i in chunk if i in rows]


def fixed_columns(fix: Fix, example: Any) -> dict[str, list[Any]]:
    """The message columns the fix changes in this example (an Example or a row of its columns), new values."""
    assert fix.rewrite is not None
    out: dict[str, list[Any]] = {}
    for name in MESSAGE_COLUMNS:
        value = getattr(example, name)
        if isinstance(value, list):
            new = fix.rewrite(value)
            if new is not None and new != value:
                out[name] = new
    return out


def message_rows(session: Session, dataset_id: int, ids: list[int] | None = None) -> Iterator[Any]:
    """(id, position, and the message columns) of the dataset's examples in order: what a preview reads, without
    loading the rest of each row (its cached problems, token counts, search text)."""
    t = EXAMPLES.c
    where = [t.dataset_id == dataset_id]
    if ids is not None:
        where.append(t.id.in_(ids))
    query = select(t.id, t.position, *[t[name] for name in MESSAGE_COLUMNS]).where(*where).order_by(t.position, t.id)
    yield from session.execute(query.execution_options(yield_per=CHUNK))


def _text(message: Any) -> str:
    if not isinstance(message, dict):
        return json.dumps(message, ensure_ascii=False)
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if message.get("tool_calls") is not None:
        text += " tool_calls: " + json.dumps(message["tool_calls"], ensure_ascii=False)
    return text


def _visible_end(text: str) -> str:
    """Trailing whitespace drawn as visible marks (␣ ↵ ⇥), so a whitespace fix's diff can be seen."""
    body = text.rstrip()
    return body + "".join(VISIBLE.get(c, c) for c in text[len(body) :])


def _window(before: str, after: str) -> tuple[str, str]:
    same = 0
    for a, b in zip(before, after, strict=False):
        if a != b:
            break
        same += 1
    start = max(0, same - CONTEXT)
    lead = "…" if start else ""

    def cut(text: str) -> str:
        return lead + _visible_end(text[start : same + WIDTH]) + ("…" if len(text) > same + WIDTH else "")

    return cut(before), cut(after)


def diff(example: Any, new: dict[str, list[Any]]) -> ExampleDiff:
    """The changed messages of an example, before and after (what was found is shown only partly)."""
    out = ExampleDiff(int(example.id), int(example.position))
    for name, messages in new.items():
        old = getattr(example, name) or []
        for index, message in enumerate(messages):
            previous = old[index] if index < len(old) else None
            if previous == message:
                continue
            role = message.get("role", "?") if isinstance(message, dict) else "?"
            where = f"message {index + 1} ({role})" if name == "messages" else f"{name} {index + 1}"
            # Any fix's preview, not only masking's, shows a found secret only partly.
            before, after = _window(partly_hidden(_text(previous)), partly_hidden(_text(message)))
            out.changes.append(Change(where, before, after))
    return out


def preview_rewrites(
    session: Session, dataset_id: int, chosen: list[Fix], ids: list[int] | None = None
) -> list[Preview]:
    """How many examples each fix would change, and the first few before/after diffs, in one pass over the
    examples; nothing is written."""
    get_dataset(session, dataset_id)
    previews = [Preview(fix) for fix in chosen]
    for row in message_rows(session, dataset_id, ids):
        for preview in previews:
            preview.n_examples += 1
            new = fixed_columns(preview.fix, row)
            if new:
                preview.n_changed += 1
                if len(preview.diffs) < SAMPLES:
                    preview.diffs.append(diff(row, new))
    return previews


def apply_rewrite(session: Session, dataset_id: int, fix: Fix, ids: list[int] | None = None) -> Applied:
    """Rewrite every example the fix changes (revalidated, versions bumped) and record it as one revision."""
    get_dataset(session, dataset_id)
    rev = touch_dataset(session, dataset_id)  # first: the dataset row is locked before the examples
    changed: list[tuple[int, int, dict[str, Any]]] = []
    now = utcnow()
    for chunk in examples_in_chunks(session, dataset_id, ids):
        for example in chunk:
            new = fixed_columns(fix, example)
            if not new:
                continue
            before = snapshot(example)
            for name, value in new.items():
                setattr(example, name, value)
            validation.apply_check(example)
            example.version += 1
            example.updated_at = now
            example.rev = rev
            session.add(example)
            changed.append((stored_id(example), example.version, before))
        session.flush()
    n = len(changed)
    if not n:
        session.rollback()
        return Applied(f"Nothing to change: no example needs “{fix.title}”.")
    summary = fix.done.format(n=f"{n:,} example{'' if n == 1 else 's'}") + "."
    revision = record_revision(session, dataset_id, fix.name, summary, changed=changed)
    session.commit()
    return Applied(summary, n, stored_id(revision))
