"""A dataset's revision history: each bulk fix is one row keeping its examples' before-state, and undo restores it.

An undo refuses when an example the step changed has changed since (its version is no longer the one the step
left), so it never overwrites a later edit; undoing the later steps first (newest first) always works, because an
undo puts each example back at the version it had before the step.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.datasets import validation
from app.datasets.datasets import get_dataset, touch_dataset
from app.errors import Conflict, NotFound
from app.tables.common import fits_db_int, stored_id, utcnow
from app.tables.dataset import Example
from app.tables.revision import DatasetRevision

# What an example is, beyond its cached validation columns (apply_check recomputes those on restore).
SNAPSHOT_COLUMNS = (
    "position",
    "messages",
    "tools",
    "extra",
    "split",
    "note",
    "version",
    "source_file",
    "source_line",
    "preferred_output",
    "non_preferred_output",
)
TIMES = ("created_at", "updated_at")
SHOWN = 5  # ids named in a refusal


def snapshot(example: Example) -> dict[str, Any]:
    """The example's own columns as JSON-ready values: enough to restore it exactly."""
    row: dict[str, Any] = {name: getattr(example, name) for name in SNAPSHOT_COLUMNS}
    for name in TIMES:
        row[name] = getattr(example, name).isoformat()
    return row


def record_revision(
    session: Session,
    dataset_id: int,
    fix: str,
    summary: str,
    changed: Iterable[tuple[int, int, dict[str, Any]]] = (),
    deleted: Iterable[tuple[int, dict[str, Any]]] = (),
) -> DatasetRevision:
    """Add the step's revision row (in the caller's transaction): `changed` holds (id, the version the step left,
    the before-snapshot) of each changed example, `deleted` (id, snapshot) of each deleted one."""
    before: list[dict[str, Any]] = [
        {"id": i, "deleted": False, "after_version": version, "row": row} for i, version, row in changed
    ]
    n_changed = len(before)
    before += [{"id": i, "deleted": True, "after_version": None, "row": row} for i, row in deleted]
    revision = DatasetRevision(
        dataset_id=dataset_id,
        fix=fix,
        summary=summary[:500],
        n_changed=n_changed,
        n_deleted=len(before) - n_changed,
        before=before,
    )
    session.add(revision)
    session.flush()
    return revision


def list_revisions(session: Session, dataset_id: int, limit: int = 50) -> list[DatasetRevision]:
    """The dataset's latest steps, newest first."""
    get_dataset(session, dataset_id)
    query = (
        select(DatasetRevision)
        .where(col(DatasetRevision.dataset_id) == dataset_id)
        .order_by(col(DatasetRevision.id).desc())
        .limit(max(1, min(int(limit), 500)))
    )
    return list(session.exec(query))


def get_revision(session: Session, dataset_id: int, revision_id: int) -> DatasetRevision:
    """The dataset's revision with this id, or NotFound."""
    revision = session.get(DatasetRevision, revision_id) if fits_db_int(revision_id) else None
    if revision is None or revision.dataset_id != dataset_id:
        raise NotFound(
            f"Dataset {dataset_id} has no revision {revision_id}.", code="revision_not_found", param="revision_id"
        )
    return revision


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:SHOWN])
    return shown + (f" and {len(ids) - SHOWN:,} more" if len(ids) > SHOWN else "")


def _restore(example: Example, row: dict[str, Any]) -> None:
    for name in SNAPSHOT_COLUMNS:
        setattr(example, name, row.get(name))
    for name in TIMES:
        setattr(example, name, datetime.fromisoformat(row[name]))
    validation.apply_check(example)


def undo_revision(session: Session, dataset_id: int, revision_id: int) -> str:
    """Put back every example the step changed or deleted; refuses (Conflict) if one has changed since."""
    revision = get_revision(session, dataset_id, revision_id)
    if revision.undone_at is not None:
        raise Conflict(f"“{revision.summary}” was already undone.", code="revision_undone", param="revision_id")
    rev = touch_dataset(session, dataset_id)  # first: the dataset row is locked before the examples
    entries: list[dict[str, Any]] = revision.before or []
    changed_ids = [int(e["id"]) for e in entries if not e["deleted"]]
    current: dict[int, Example] = {}
    for start in range(0, len(changed_ids), 500):
        chunk = changed_ids[start : start + 500]
        current.update({stored_id(e): e for e in session.exec(select(Example).where(col(Example.id).in_(chunk)))})
    stale = [
        int(e["id"])
        for e in entries
        if not e["deleted"]
        and (
            (found := current.get(int(e["id"]))) is None
            or found.dataset_id != dataset_id
            or found.version != e["after_version"]
        )
    ]
    if stale:
        session.rollback()
        raise Conflict(
            f"Cannot undo “{revision.summary}”: {len(stale):,} of its examples changed or were deleted since "
            f"(ids {_ids(stale)}). Undo the later steps first, or fix those examples in the editor.",
            code="revision_changed_since",
            param="revision_id",
        )
    for entry in entries:
        row = entry["row"]
        if entry["deleted"]:
            taken = session.get(Example, int(entry["id"])) is not None
            # Keep the old id where it is free (SQLite may have given it to a newer example since).
            restored = Example(id=None if taken else int(entry["id"]), dataset_id=dataset_id)
        else:
            restored = current[int(entry["id"])]
        _restore(restored, row)
        restored.rev = rev
        session.add(restored)
    revision.undone_at = utcnow()
    session.add(revision)
    session.commit()
    n = len(entries)
    return f"Undid “{revision.summary}”: restored {n:,} example{'' if n == 1 else 's'}."
