"""Near-duplicate clusters: review them side by side, keep one (delete the others) or merge, as undoable steps."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.datasets import validation
from app.datasets.datasets import get_dataset, touch_dataset
from app.datasets.fixes.bulk import Applied, Preview, clean_ids
from app.datasets.fixes.catalog import NEAR_DUPLICATES, get_fix
from app.datasets.fixes.masking import partly_hidden
from app.datasets.fixes.revisions import record_revision, snapshot
from app.datasets.quality.near_duplicates import near_duplicate_clusters
from app.errors import Invalid
from app.tables.common import stored_id, utcnow
from app.tables.dataset import Example

MERGED_NOTE = "Merged with {n} near-duplicate{s} (ids {ids})."


@dataclass
class Shown:
    """An example as the review shows it: the row, and (role, text) of each message, found secrets only partly."""

    example: Example
    messages: list[tuple[str, str]]


@dataclass
class ClusterView:
    """A cluster to review: its examples in order, how alike they are, and whether it spans train and validation."""

    number: int
    similarity: float
    leaks_split: bool
    examples: list[Shown]


def shown(example: Example) -> Shown:
    """The example's messages for the review page, each text with what it holds of secrets cut to its ends."""
    messages: list[tuple[str, str]] = []
    for message in example.messages or []:
        if isinstance(message, dict):
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            messages.append((str(message.get("role", "?")), partly_hidden(text)))
    return Shown(example, messages)


def review_clusters(session: Session, dataset_id: int, limit: int = 50) -> tuple[int, list[ClusterView]]:
    """How many near-duplicate clusters the dataset has, and the first `limit` with their examples."""
    get_dataset(session, dataset_id)
    clusters = near_duplicate_clusters(session, dataset_id)
    views: list[ClusterView] = []
    for number, cluster in enumerate(clusters[:limit], start=1):
        ids = list(cluster.example_ids)
        rows = session.exec(select(Example).where(col(Example.id).in_(ids))).all()
        ordered = sorted(rows, key=lambda e: (e.position, stored_id(e)))
        if len(ordered) > 1:
            examples = [shown(e) for e in ordered]
            views.append(ClusterView(number, float(cluster.similarity), bool(cluster.leaks_split), examples))
    return len(clusters), views


def _first_of_each(session: Session, dataset_id: int) -> list[tuple[int, list[int]]]:
    """(kept, deleted ids) for each cluster: the first example by position stays."""
    plans: list[tuple[int, list[int]]] = []
    for cluster in near_duplicate_clusters(session, dataset_id):
        ids = list(cluster.example_ids)
        rows = session.exec(
            select(col(Example.id), col(Example.position)).where(
                col(Example.id).in_(ids), col(Example.dataset_id) == dataset_id
            )
        ).all()
        ordered = [int(i or 0) for i, _ in sorted(rows, key=lambda r: (r[1], r[0] or 0))]
        if len(ordered) > 1:
            plans.append((ordered[0], ordered[1:]))
    return plans


def preview_near_duplicates(session: Session, dataset_id: int) -> Preview:
    """How many examples keeping the first of each cluster would delete (nothing is written)."""
    get_dataset(session, dataset_id)
    plans = _first_of_each(session, dataset_id)
    preview = Preview(get_fix(NEAR_DUPLICATES), n_clusters=len(plans))
    preview.n_examples = sum(1 + len(dropped) for _, dropped in plans)
    preview.n_changed = sum(len(dropped) for _, dropped in plans)
    return preview


def _merge_into(kept: Example, others: list[Example]) -> None:
    """The kept example takes the others' notes and any metadata key it lacks."""
    notes = [kept.note] if kept.note else []
    notes += [o.note for o in others if o.note and o.note not in notes]
    ids = ", ".join(str(o.id) for o in others)
    notes.append(MERGED_NOTE.format(n=len(others), s="" if len(others) == 1 else "s", ids=ids))
    kept.note = "\n".join(notes)
    extra: dict[str, Any] = dict(kept.extra or {})
    for other in others:
        for key, value in (other.extra or {}).items():
            extra.setdefault(key, value)
    kept.extra = extra or None


def _drop(
    session: Session, dataset_id: int, plans: Iterable[tuple[int, list[int]]], merge: bool, summary_of: Any
) -> Applied:
    rev = touch_dataset(session, dataset_id)  # first: the dataset row is locked before the examples
    changed: list[tuple[int, int, dict[str, Any]]] = []
    deleted: list[tuple[int, dict[str, Any]]] = []
    for keep_id, drop_ids in plans:
        kept = session.get(Example, keep_id)
        others = list(session.exec(select(Example).where(col(Example.id).in_(drop_ids))).all())
        if kept is None or kept.dataset_id != dataset_id or any(o.dataset_id != dataset_id for o in others):
            raise Invalid("Those examples are not all in this dataset.", param="example_ids")
        others.sort(key=lambda e: (e.position, stored_id(e)))
        if merge and others:
            before = snapshot(kept)
            _merge_into(kept, others)
            validation.apply_check(kept)
            kept.version += 1
            kept.updated_at = utcnow()
            kept.rev = rev
            session.add(kept)
            changed.append((keep_id, kept.version, before))
        for other in others:
            deleted.append((stored_id(other), snapshot(other)))
            session.delete(other)
    session.flush()
    if not deleted:
        session.rollback()
        return Applied("Nothing to change: no near-duplicate to delete.")
    summary = summary_of(len(deleted))
    fix = get_fix(NEAR_DUPLICATES)
    revision = record_revision(session, dataset_id, fix.name, summary, changed=changed, deleted=deleted)
    session.commit()
    return Applied(summary, len(deleted) + len(changed), stored_id(revision))


def keep_one(
    session: Session, dataset_id: int, keep_id: Any, example_ids: Iterable[Any], merge: bool = False
) -> Applied:
    """Keep `keep_id` of a cluster and delete its other examples (merge: the kept one takes their notes)."""
    get_dataset(session, dataset_id)
    ids = clean_ids(example_ids) or []
    try:
        keep = int(keep_id)
    except (TypeError, ValueError) as exc:
        raise Invalid("Choose the example to keep.", param="keep") from exc
    drop = [i for i in ids if i != keep]
    if not drop:
        raise Invalid("A cluster needs at least one other example to delete.", param="example_ids")

    def summary(n: int) -> str:
        verb = "Merged" if merge else "Kept"
        return f"{verb} example {keep} of a near-duplicate cluster, deleting {n:,} other{'' if n == 1 else 's'}."

    return _drop(session, dataset_id, [(keep, drop)], merge, summary)


def keep_first_of_each(session: Session, dataset_id: int) -> Applied:
    """The bulk fix: each near-duplicate cluster keeps its first example; the others are deleted."""
    get_dataset(session, dataset_id)
    plans = _first_of_each(session, dataset_id)
    fix = get_fix(NEAR_DUPLICATES)

    def summary(n: int) -> str:
        return fix.done.format(n=f"{n:,} example{'' if n == 1 else 's'}") + "."

    return _drop(session, dataset_id, plans, False, summary)
