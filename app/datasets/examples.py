"""Examples: add, edit with optimistic concurrency, list a page, bulk operations, random splits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from app.datasets import validation
from app.datasets.datasets import big_cache, copy_examples_sql, get_dataset, touch_dataset
from app.datasets.kinds import kind_mismatch
from app.datasets.limits import Limits
from app.datasets.pair_forms import check_form, record_from_form
from app.datasets.records import check_fits, form_version, record_parts
from app.datasets.splitting import random_split
from app.errors import Conflict, Invalid, NotFound
from app.tables.common import fits_db_int, stored_id, utcnow
from app.tables.dataset import EXAMPLES, SPLITS, Dataset, Example

__all__ = [
    "SORTS",
    "Page",
    "add_example",
    "bulk_action",
    "bulk_copy",
    "bulk_delete",
    "bulk_set_split",
    "check_form",
    "delete_example",
    "duplicate_example",
    "form_version",
    "get_example",
    "list_examples",
    "normalize_split",
    "record_from_form",
    "record_parts",
    "split_randomly",
    "update_example",
]

KEEP: Any = object()  # "leave this field as it is" for update_example
SORTS = {
    "position": "Original order",
    "-position": "Reverse order",
    "newest": "Newest first",
    "errors": "Most errors first",
    "longest": "Most messages first",
}
CHUNK = 500  # ids per IN (...) clause: well under SQLite's bound-parameter limit
DEFAULT_LIMITS = Limits()  # the settings' defaults; routes pass the limits in force


@dataclass
class Page:
    """One page of examples and how many match in total."""

    total: int
    items: list[Example]
    offset: int = 0
    limit: int = 50

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def has_prev(self) -> bool:
        return self.offset > 0


def normalize_split(split: Any) -> str | None:
    """'train', 'validation' or None; anything else is refused with a clear message."""
    if split in (None, "", "none", "null"):
        return None
    if split not in SPLITS:
        raise Invalid(f"Unknown split {split!r}: use 'train', 'validation' or none.", param="split")
    return split


def get_example(session: Session, example_id: int) -> Example:
    """The example with this id, or NotFound."""
    example = session.get(Example, example_id) if fits_db_int(example_id) else None
    if example is None:
        raise NotFound(f"No example with id {example_id}.", code="example_not_found", param="example_id")
    return example


def _next_position(session: Session, dataset_id: int) -> int:
    top = session.execute(select(func.max(Example.position)).where(col(Example.dataset_id) == dataset_id)).scalar()
    return 0 if top is None else top + 1


def add_example(
    session: Session,
    dataset_id: int,
    record: Any,
    split: str | None = None,
    note: str = "",
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Example:
    """Append one example (validated, its cached columns filled) to a dataset of its kind; over `limits` is
    refused."""
    check_fits(get_dataset(session, dataset_id), record)
    parts = record_parts(record, limits)
    example = Example(
        dataset_id=dataset_id,
        position=_next_position(session, dataset_id),
        split=normalize_split(split),
        note=note or "",
        **parts,
    )
    validation.apply_check(example)
    example.rev = touch_dataset(session, dataset_id)
    session.add(example)
    session.commit()
    session.refresh(example)
    return example


def update_example(
    session: Session,
    example_id: int,
    record: Any,
    version: int | None,
    split: Any = KEEP,
    note: Any = KEEP,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Example:
    """Replace an example's content if `version` is still current; a stale version raises Conflict."""
    parts = record_parts(record, limits)
    example = get_example(session, example_id)
    check_fits(get_dataset(session, example.dataset_id), record)
    if version is None or int(version) != example.version:
        raise Conflict(
            f"This example was changed elsewhere (you edited version {version}, it is now at version "
            f"{example.version}). Your text is still in the editor: copy what you need, reload, and apply it again.",
            code="stale_version",
            param="version",
        )
    split = example.split if split is KEEP else normalize_split(split)
    note = example.note if note is KEEP else (note or "")
    # Checked on a detached copy: the stored row changes only through the version-guarded UPDATE below.
    probe = Example(dataset_id=example.dataset_id, **parts)
    validation.apply_check(probe)
    rev = touch_dataset(session, example.dataset_id)
    values = dict(parts, split=split, note=note, version=example.version + 1, updated_at=utcnow(), rev=rev)
    for column in (
        "valid",
        "n_errors",
        "n_warnings",
        "problems",
        "n_messages",
        "token_counts",
        "near_signature",
        "content_hash",
        "search_text",
    ):
        values[column] = getattr(probe, column)
    # The WHERE on version makes the check atomic even if two saves race between the read and the write.
    result = session.exec(
        update(Example).where(col(Example.id) == example_id, col(Example.version) == example.version).values(**values),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:
        session.rollback()
        raise Conflict(
            "This example was changed elsewhere while you saved. Reload it and try again.",
            code="stale_version",
            param="version",
        )
    session.commit()
    session.expire(example)
    return get_example(session, example_id)


def delete_example(session: Session, example_id: int) -> int:
    """Delete one example; returns its dataset id."""
    example = get_example(session, example_id)
    dataset_id = example.dataset_id
    touch_dataset(session, dataset_id)  # first, as every writer: the dataset row is always locked before examples
    session.delete(example)
    session.commit()
    return dataset_id


def duplicate_example(session: Session, example_id: int) -> Example:
    """A copy of an example placed right after it."""
    source = get_example(session, example_id)
    copy = Example(
        dataset_id=source.dataset_id,
        position=source.position,
        split=source.split,
        note=source.note,
        source_file=source.source_file,  # a copy of the same line
        source_line=source.source_line,
        **record_parts(source.to_record()),
    )
    validation.apply_check(copy)
    copy.near_signature = source.near_signature  # the same content: its tag still matches
    copy.rev = touch_dataset(session, source.dataset_id)
    session.add(copy)
    session.commit()
    session.refresh(copy)
    return copy


def _filters(dataset_id: int, q: str | None, split: str | None, valid: bool | None) -> list[ColumnElement[bool]]:
    where = [col(Example.dataset_id) == dataset_id]
    if split == "none":
        where.append(col(Example.split).is_(None))
    elif split:
        where.append(col(Example.split) == normalize_split(split))
    if valid is not None:
        where.append(col(Example.valid) == bool(valid))
    if q and q.strip():
        # search_text is stored lower-cased, so a lower-cased LIKE works the same on SQLite and PostgreSQL.
        needle = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(col(Example.search_text).like(f"%{needle}%", escape="\\"))
    return where


def _order(sort: str | None) -> list[ColumnElement[Any] | Mapped[Any]]:
    position, id_ = col(Example.position), col(Example.id)
    orders: dict[str, list[ColumnElement[Any] | Mapped[Any]]] = {
        "-position": [position.desc(), id_.desc()],
        "newest": [id_.desc()],
        "errors": [col(Example.n_errors).desc(), position, id_],
        "longest": [col(Example.n_messages).desc(), position, id_],
    }
    return orders.get(sort or "position", [position, id_])


def list_examples(
    session: Session,
    dataset_id: int,
    offset: int = 0,
    limit: int = 50,
    q: str | None = None,
    split: str | None = None,
    valid: bool | None = None,
    sort: str | None = "position",
    total: int | None = None,
) -> Page:
    """One page of a dataset's examples matching the filters (pass `total` when the caller already knows it)."""
    get_dataset(session, dataset_id)
    offset = max(0, int(offset or 0))
    limit = min(max(1, int(limit or 50)), 1000)
    where = _filters(dataset_id, q, split, valid)
    if total is None:
        total = session.execute(select(func.count()).select_from(Example).where(*where)).scalar_one()
    # Two steps: find the page's ids through the index only, then load just those 50 rows' JSON.
    page = select(col(Example.id)).where(*where).order_by(*_order(sort)).offset(offset).limit(limit)
    ids = list(session.exec(page))
    items: list[Example] = []
    if ids:
        rows = session.exec(select(Example).where(col(Example.id).in_(ids))).all()
        by_id = {e.id: e for e in rows}
        items = [by_id[i] for i in ids if i in by_id]
    return Page(total=total, items=items, offset=offset, limit=limit)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _clean_ids(ids: Iterable[Any]) -> list[int]:
    try:
        return sorted({int(i) for i in ids})
    except (TypeError, ValueError) as exc:
        raise Invalid("Example ids must be whole numbers.", param="ids") from exc


def bulk_delete(session: Session, dataset_id: int, ids: Iterable[Any]) -> int:
    """Delete the given examples of a dataset; returns how many were deleted."""
    get_dataset(session, dataset_id)
    touch_dataset(session, dataset_id)
    n = 0
    for chunk in _chunks(_clean_ids(ids)):
        n += session.exec(
            EXAMPLES.delete().where(EXAMPLES.c.dataset_id == dataset_id, EXAMPLES.c.id.in_(chunk))
        ).rowcount
    session.commit()
    return n


def bulk_set_split(session: Session, dataset_id: int, ids: Iterable[Any], split: Any) -> int:
    """Set the split of the given examples; returns how many changed."""
    get_dataset(session, dataset_id)
    split = normalize_split(split)
    rev = touch_dataset(session, dataset_id)
    n = 0
    for chunk in _chunks(_clean_ids(ids)):
        n += session.exec(
            update(Example)
            .where(col(Example.dataset_id) == dataset_id, col(Example.id).in_(chunk))
            .values(split=split, version=col(Example.version) + 1, updated_at=utcnow(), rev=rev)
        ).rowcount
    session.commit()
    return n


def bulk_copy(session: Session, dataset_id: int, ids: Iterable[Any], target_dataset_id: int) -> int:
    """Copy the given examples to the end of another dataset; returns how many were copied."""
    source_kind = get_dataset(session, dataset_id).kind
    target = get_dataset(session, int(target_dataset_id))
    if target.kind != source_kind:
        raise kind_mismatch(target.kind, source_kind)
    rev = touch_dataset(session, target_dataset_id)
    n = 0
    for chunk in _chunks(_clean_ids(ids)):
        start = _next_position(session, target_dataset_id)
        low = session.execute(select(func.min(Example.position)).where(col(Example.id).in_(chunk))).scalar() or 0
        source = (col(Example.dataset_id) == dataset_id) & col(Example.id).in_(chunk)
        n += copy_examples_sql(session, source, target_dataset_id, start - low, rev)
    session.commit()
    return n


def split_randomly(session: Session, dataset_id: int, percent: float | str, seed: int | str = 0) -> dict[str, int]:
    """Assign `percent`% of the examples to validation and the rest to train, reproducibly for a seed."""
    get_dataset(session, dataset_id)
    try:
        share = float(percent)
    except (TypeError, ValueError) as exc:
        raise Invalid("The validation percentage must be a number.", param="percent") from exc
    if not 0 <= share <= 100:
        raise Invalid("The validation percentage must be between 0 and 100.", param="percent")
    t = EXAMPLES.c
    ids: list[int] = list(session.exec(select(t.id).where(t.dataset_id == dataset_id).order_by(t.id)))
    validation_ids, train_ids = random_split(ids, share, seed)
    n_validation = len(validation_ids)
    now = utcnow()
    with big_cache(session):
        rev = touch_dataset(session, dataset_id)
        for split, group in (("validation", validation_ids), ("train", train_ids)):
            # Sorted chunks touch the table's pages in order instead of jumping around at random.
            for chunk in _chunks(sorted(group)):
                session.exec(
                    update(Example)
                    .where(col(Example.id).in_(chunk))
                    .values(split=split, version=col(Example.version) + 1, updated_at=now, rev=rev),
                    execution_options={"synchronize_session": False},
                )
    session.commit()
    return {"train": len(ids) - n_validation, "validation": n_validation}


def other_datasets(session: Session, dataset_id: int) -> list[Dataset]:
    """Datasets examples can be copied to (every other one of the same kind)."""
    kind = get_dataset(session, dataset_id).kind
    others = select(Dataset).where(col(Dataset.id) != dataset_id, col(Dataset.kind) == kind)
    return list(session.exec(others.order_by(col(Dataset.name))))


def bulk_action(
    session: Session, dataset_id: int, action: str, ids: list[Any], target_split: str = "", target_dataset: Any = ""
) -> str:
    """Run one bulk action chosen on the dataset page; returns a sentence saying what happened."""
    if not ids:
        raise Invalid("Select at least one example first.", param="ids")
    if action == "delete":
        n = bulk_delete(session, dataset_id, ids)
        return f"Deleted {n:,} example{'' if n == 1 else 's'}."
    if action == "split":
        n = bulk_set_split(session, dataset_id, ids, target_split)
        return f"Set the split of {n:,} example{'' if n == 1 else 's'} to {target_split or 'none'}."
    if action == "copy":
        if not str(target_dataset).strip().isdigit():
            raise Invalid("Choose the dataset to copy the examples to.", param="target_dataset")
        target = get_dataset(session, int(target_dataset))
        n = bulk_copy(session, dataset_id, ids, stored_id(target))
        return f"Copied {n:,} examples to “{target.name}”."
    raise Invalid(f"Unknown bulk action {action!r}.", param="action")
