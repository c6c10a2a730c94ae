"""Datasets: create, list with counts, rename, delete, duplicate. Counts come from one indexed GROUP BY."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, literal, select
from sqlmodel import Session, col

from app.datasets.kinds import checked_kind, kind_mismatch
from app.errors import Invalid, NotFound
from app.tables.common import fits_db_int, stored_id, utcnow
from app.tables.dataset import DATASETS, EXAMPLES, PREFERENCE, SUPERVISED, Dataset
from app.tables.file import UploadedFile

# Columns copied verbatim when a dataset or an example is duplicated (everything but id, dataset_id, timestamps).
COPY_COLUMNS = (
    "position",
    "messages",
    "tools",
    "extra",
    "split",
    "note",
    "valid",
    "n_errors",
    "n_warnings",
    "problems",
    "n_messages",
    "token_counts",
    "near_signature",
    "content_hash",
    "search_text",
    "source_file",
    "source_line",
    "preferred_output",
    "non_preferred_output",
)


@dataclass
class DatasetCounts:
    """How many examples a dataset holds, by split and validity."""

    examples: int = 0
    train: int = 0
    validation: int = 0
    unassigned: int = 0
    invalid: int = 0

    @property
    def valid(self) -> int:
        return self.examples - self.invalid


@dataclass
class DatasetSummary:
    """A dataset with its counts, as the list page and the API show it."""

    dataset: Dataset
    counts: DatasetCounts = field(default_factory=DatasetCounts)

    @property
    def id(self) -> int:
        return stored_id(self.dataset)

    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def examples(self) -> int:
        return self.counts.examples

    @property
    def train(self) -> int:
        return self.counts.train

    @property
    def validation(self) -> int:
        return self.counts.validation

    @property
    def invalid(self) -> int:
        return self.counts.invalid


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A dataset needs a name.", param="name")
    if len(name) > 200:
        raise Invalid("A dataset name can be at most 200 characters.", param="name")
    return name


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > 5000:
        raise Invalid("A description can be at most 5,000 characters.", param="description")
    return description


def new_dataset(session: Session, name: str, description: str = "", kind: str = SUPERVISED) -> Dataset:
    """Add an empty dataset in the caller's transaction (flushed: it has its id)."""
    dataset = Dataset(name=_clean_name(name), description=_clean_description(description), kind=checked_kind(kind))
    session.add(dataset)
    session.flush()
    return dataset


def create_dataset(session: Session, name: str, description: str = "", kind: str = SUPERVISED) -> Dataset:
    """Create an empty dataset of a kind (supervised chat examples, or preference pairs)."""
    dataset = new_dataset(session, name, description, kind)
    session.commit()
    session.refresh(dataset)
    return dataset


def get_dataset(session: Session, id: int) -> Dataset:
    """The dataset with this id, or NotFound."""
    dataset = session.get(Dataset, id) if fits_db_int(id) else None
    if dataset is None:
        raise NotFound(f"No dataset with id {id}.", code="dataset_not_found", param="dataset_id")
    return dataset


def _counts_query(dataset_ids: list[int] | None = None) -> Select:
    # Served by ix_examples_dataset_split_valid: no example row (nor its JSON) is read to count.
    t = EXAMPLES.c
    stmt = select(t.dataset_id, t.split, t.valid, func.count()).group_by(t.dataset_id, t.split, t.valid)
    if dataset_ids is not None:
        stmt = stmt.where(t.dataset_id.in_(dataset_ids))
    return stmt


def _fold(rows: Iterable[Any]) -> dict[int, DatasetCounts]:
    counts: dict[int, DatasetCounts] = {}
    for dataset_id, split, valid, n in rows:
        c = counts.setdefault(dataset_id, DatasetCounts())
        c.examples += n
        if split == "train":
            c.train += n
        elif split == "validation":
            c.validation += n
        else:
            c.unassigned += n
        if not valid:
            c.invalid += n
    return counts


def dataset_counts(session: Session, dataset_id: int) -> DatasetCounts:
    """Counts of one dataset's examples."""
    rows = session.execute(_counts_query([dataset_id])).all()
    return _fold(rows).get(dataset_id, DatasetCounts())


def list_datasets(session: Session, source: str = "") -> list[DatasetSummary]:
    """Every dataset, newest first, with its counts; source "upload" keeps those made by /v1/files uploads and
    "dashboard" the others."""
    query = select(Dataset).order_by(col(Dataset.id).desc())
    uploaded = select(col(UploadedFile.dataset_id)).where(col(UploadedFile.dataset_id).is_not(None))
    if source == "upload":
        query = query.where(col(Dataset.id).in_(uploaded))
    elif source == "dashboard":
        query = query.where(col(Dataset.id).not_in(uploaded))
    datasets = session.scalars(query).all()
    counts = _fold(session.execute(_counts_query()).all())
    return [DatasetSummary(d, counts.get(stored_id(d), DatasetCounts())) for d in datasets]


def summarize(session: Session, dataset: Dataset) -> DatasetSummary:
    """One dataset with its counts."""
    return DatasetSummary(dataset, dataset_counts(session, stored_id(dataset)))


def update_dataset(session: Session, id: int, name: str | None = None, description: str | None = None) -> Dataset:
    """Change a dataset's name and/or description (None leaves a field as it is)."""
    dataset = get_dataset(session, id)
    if name is not None:
        dataset.name = _clean_name(name)
    if description is not None:
        dataset.description = _clean_description(description)
    dataset.updated_at = utcnow()
    session.add(dataset)
    session.commit()
    session.refresh(dataset)
    return dataset


def touch_dataset(session: Session, dataset_id: int) -> int:
    """Mark a dataset as changed now (inside the caller's transaction); returns its new `rev` for the rows written.

    Call it before writing (or deleting) example rows and stamp the rows written with the result: the bump takes
    the dataset row's write lock until commit, so a reader that sees rev N also sees every row stamped N or less
    (the Report relies on it), and every writer locking the dataset row first keeps PostgreSQL free of deadlocks.
    """
    d = DATASETS.c
    bump = DATASETS.update().where(d.id == dataset_id).values(updated_at=utcnow(), rev=d.rev + 1)
    return session.execute(bump.returning(d.rev)).scalar_one()


def import_kind(session: Session, dataset: Dataset) -> str | None:
    """The kind a file imported into the dataset must have: its own once it holds examples or was made for
    preference pairs; None for an empty dataset of the default kind, which takes its first file's kind."""
    if dataset.kind == PREFERENCE:
        return PREFERENCE
    held = session.execute(select(EXAMPLES.c.id).where(EXAMPLES.c.dataset_id == dataset.id).limit(1)).first()
    return dataset.kind if held is not None else None


def settle_kind(session: Session, dataset_id: int, kind: str) -> None:
    """Before rows of `kind` are written (in the caller's transaction): an empty dataset of the default kind
    takes that kind; a dataset that requires the other kind refuses them (Invalid)."""
    dataset = get_dataset(session, dataset_id)
    required = import_kind(session, dataset)
    if required is None:
        if dataset.kind != kind:
            session.execute(DATASETS.update().where(DATASETS.c.id == dataset_id).values(kind=kind))
            session.expire(dataset, ["kind"])
    elif required != kind:
        raise kind_mismatch(required, kind)


def delete_dataset(session: Session, id: int) -> None:
    """Delete a dataset and all its examples."""
    dataset = get_dataset(session, id)
    # An explicit delete keeps this fast and correct even where foreign keys are off.
    session.execute(EXAMPLES.delete().where(EXAMPLES.c.dataset_id == id))
    session.delete(dataset)
    session.commit()


def copy_examples_sql(
    session: Session,
    source_where: ColumnElement[bool],
    target_dataset_id: int,
    position_offset: int = 0,
    rev: int | None = None,
) -> int:
    """Copy the examples matched by `source_where` into another dataset, in one INSERT … SELECT, stamped `rev`."""
    table = EXAMPLES
    now = utcnow()
    cols = [table.c[name] for name in COPY_COLUMNS]
    selected = (
        select(
            *[(c + position_offset).label("position") if c.name == "position" else c for c in cols],
            literal(target_dataset_id, table.c.dataset_id.type).label("dataset_id"),
            literal(1, table.c.version.type).label("version"),
            literal(now, table.c.created_at.type).label("created_at"),
            literal(now, table.c.updated_at.type).label("updated_at"),
            literal(rev, table.c.rev.type).label("rev"),
        )
        .where(source_where)
        .order_by(table.c.position, table.c.id)
    )
    names = [*COPY_COLUMNS, "dataset_id", "version", "created_at", "updated_at", "rev"]
    result = session.exec(insert(table).from_select(names, selected))
    return result.rowcount or 0


def duplicate_dataset(session: Session, id: int, name: str | None = None) -> Dataset:
    """A copy of a dataset with all its examples (each at version 1)."""
    source = get_dataset(session, id)
    copy = Dataset(
        name=_clean_name(name or f"{source.name} (copy)"[:200]), description=source.description, kind=source.kind
    )
    session.add(copy)
    session.flush()
    copy_id = stored_id(copy)
    copy_examples_sql(session, EXAMPLES.c.dataset_id == id, copy_id, rev=touch_dataset(session, copy_id))
    session.commit()
    session.refresh(copy)
    return copy


@contextmanager
def big_cache(session: Session, kilobytes: int = 128_000) -> Iterator[None]:
    """A larger SQLite page cache on the session's connection while a bulk write runs (no-op elsewhere)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{int(kilobytes)}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(before)}")
