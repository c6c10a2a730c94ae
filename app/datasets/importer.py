"""Import JSONL (chat or legacy prompt/completion) and CSV into a dataset: received first, written in one transaction.

Every line is accounted for: it becomes an example (flagged invalid if its contents are wrong), or it is
rejected with its line number, a stable code and a plain message (app.datasets.rejections). The file is read
and checked as it arrives (app.datasets.import_stream) without any transaction open; the rows are then inserted
in one transaction, so a failure anywhere leaves the dataset exactly as it was and the write lock is held only
while rows are inserted, never while a client is still sending.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, column, func, insert, select, table
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col

from app.config import Settings
from app.datasets.datasets import big_cache, get_dataset, import_kind, settle_kind, touch_dataset
from app.datasets.import_csv import CsvReceiver
from app.datasets.import_rows import IMPORT_FIELDS, PAIR_IMPORT_FIELDS, TOKEN_COUNTS, parse_line
from app.datasets.import_signing import LateSignatures
from app.datasets.import_stream import JsonlReceiver, Prepared, Progress, Receiver
from app.datasets.import_tokens import Counted
from app.datasets.limits import Limits
from app.datasets.rejections import (
    MESSAGES,
    SAMPLE,
    RejectedLine,
    Rejections,
    raw_path,
    read_reasons,
    reasons_path,
)
from app.errors import Invalid, NotFound
from app.tables.common import utcnow
from app.tables.dataset import EXAMPLES, PREFERENCE, SUPERVISED, Example

__all__ = [
    "MESSAGES",
    "SAMPLE",
    "ImportResult",
    "RejectedLine",
    "import_csv",
    "import_file",
    "import_jsonl",
    "iter_records",
    "reasons_file",
    "rejected_path",
    "rejected_reasons",
    "start_import",
    "write_import",
]

BATCH = 1000  # rows per executemany: large enough to amortise, small enough to keep memory flat
READ = 1 << 20  # bytes per read of a local file
# A bigger page cache for the import's connection, for the import only. It mattered most while a content-hash
# index took inserts at random places (dropped in migration 0003); every index left is appended to in order, and
# since then the difference is within the shared machine's noise. It stays: it costs memory only while an import
# runs, and the 500 MB import stays under its memory bound with it (bench/README.md).
IMPORT_CACHE_KB = 128_000


@dataclass
class ImportResult:
    """What an import did: `rejected` holds the first rejected lines, `rejected_count` counts them all."""

    imported: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    rejected_count: int = 0
    lines: int = 0
    import_id: str | None = None  # set when the rejected lines were written to files for download
    encoding: str = "utf-8"  # what the file was decoded from (a UTF-16 file is read as such)
    blank_lines: int = 0  # blank lines skipped (they carry no example)
    invalid_count: int = 0  # imported examples with errors (kept to fix in the editor; not trained)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # their first ones: (file line, code, why)
    signing: LateSignatures | None = None  # storing the signatures made after the commit (None: none were late)

    def as_dict(self) -> dict[str, Any]:
        """The JSON API's shape."""
        return {
            "imported": self.imported,
            "rejected": [r.as_dict() for r in self.rejected],
            "rejected_count": self.rejected_count,
            "invalid_count": self.invalid_count,
            "invalid": [{"line": line, "code": code, "message": message} for line, code, message in self.invalid],
            "blank_lines": self.blank_lines,
        }


# The example's own values and its file line (import_rows), then what every row of one import shares, then its
# position. `rev` is the report's change counter (migration 0004): rows stamped with the import's revision are
# read once by the report instead of at every request.
_SHARED_COLUMNS = ("dataset_id", "split", "note", "version", "created_at", "updated_at", "source_file", "rev")
# `near_signature` (migration 0011) last: the import's counting helper signs the rows beside their token counts.
_INSERT_COLUMNS = (*IMPORT_FIELDS, *_SHARED_COLUMNS, "position", "near_signature")
# The table with untyped columns: values go to the driver as we prepared them. Serialising the JSON ourselves
# (and converting datetimes once per import) roughly halves the cost of an insert.
_RAW = table("examples", *[column(name) for name in _INSERT_COLUMNS])
# The same for preference pairs: their rows carry the two answers before the file line.
_PAIR_INSERT_COLUMNS = (*PAIR_IMPORT_FIELDS, *_SHARED_COLUMNS, "position", "near_signature")
_PAIR_RAW = table("examples", *[column(name) for name in _PAIR_INSERT_COLUMNS])


class _Writer:
    """Inserts prepared rows (import_rows.IMPORT_FIELDS) in batches with executemany, in the caller's transaction."""

    def __init__(
        self, session: Session, dataset_id: int, rev: int, source_file: str | None = None, kind: str = SUPERVISED
    ):
        pairs = kind == PREFERENCE
        self.columns: tuple[str, ...] = _PAIR_INSERT_COLUMNS if pairs else _INSERT_COLUMNS
        raw = _PAIR_RAW if pairs else _RAW
        self.session, self.dataset_id = session, dataset_id
        where = col(Example.dataset_id) == dataset_id
        top = session.execute(select(func.max(Example.position)).where(where)).scalar()
        self.position = 0 if top is None else top + 1
        dialect = session.get_bind().dialect
        now = utcnow()
        stamp = EXAMPLES.c.created_at.type.bind_processor(dialect)
        # Without a processor the sqlite3 driver would call isoformat(" ") on every row: do it once.
        sent: Any = stamp(now) if stamp else (now.isoformat(" ") if dialect.name == "sqlite" else now)
        # `valid` stays a Python bool: sqlite3 stores it as 1/0 (what the Boolean type's processor would make of
        # it) and PostgreSQL drivers send it as a boolean.
        self.shared = (dataset_id, None, "", 1, sent, sent, source_file, rev)
        # Compiled once; executemany then goes straight to the driver (no per-batch statement processing).
        compiled = insert(raw).compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        if self.positional and tuple(compiled.positiontup or ()) != self.columns:
            raise RuntimeError("unexpected column order in the compiled INSERT")
        self.rows: list[Any] = []
        self.count = 0

    def add_rows(self, prepared: list[tuple], counted: Counted | None = None) -> None:
        """Queue prepared rows, in order, with their token counts (JSON text) and stored signatures when given;
        full batches are written at once."""
        shared, start = self.shared, self.position
        counts, signed = (counted.counts, counted.signatures) if counted is not None else (None, None)
        signatures = signed if signed is not None else [None] * len(prepared)
        if counts is None:
            rows = [
                row + shared + (position, signature)
                for position, (row, signature) in enumerate(zip(prepared, signatures, strict=True), start)
            ]
        else:
            at = TOKEN_COUNTS
            rows = [
                (*row[:at], text, *row[at + 1 :], *shared, position, signature)
                for position, (row, text, signature) in enumerate(zip(prepared, counts, signatures, strict=True), start)
            ]
        self.position = start + len(rows)
        if self.positional:
            self.rows += rows
        else:
            self.rows += [dict(zip(self.columns, values, strict=True)) for values in rows]
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows."""
        if self.rows:
            self.session.connection().exec_driver_sql(self.sql, self.rows)
            self.count += len(self.rows)
            self.rows = []


def _touch(session: Session, dataset_id: int) -> int:
    try:
        return touch_dataset(session, dataset_id)
    except NoResultFound:  # deleted while its file was arriving
        raise NotFound(f"No dataset with id {dataset_id}.", code="dataset_not_found", param="dataset_id") from None


def write_rows(session: Session, dataset_id: int, prepared: Prepared) -> int:
    """Insert received rows after a dataset's examples, in the caller's transaction; returns how many."""
    with big_cache(session, IMPORT_CACHE_KB):
        # Bumped before any row is written, as the report's change counter asks (app.datasets.datasets).
        rev = _touch(session, dataset_id)
        settle_kind(session, dataset_id, prepared.kind)
        writer = _Writer(session, dataset_id, rev, prepared.source_file, prepared.kind)
        for rows, counted in prepared.batches():
            if counted is not None and counted.late is not None:  # its signatures come after the commit
                prepared.late.append((writer.position, counted.late))
            writer.add_rows(rows, counted)
        writer.flush()
    return writer.count


def close_import(session: Session, dataset_id: int, prepared: Prepared) -> LateSignatures | None:
    """The rows are committed: free what the import held, and store the signatures its helper had not made in time
    from a thread (app.datasets.import_signing), which keeps the helper until they are made."""
    signing = None
    if prepared.late:
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine  # a session bound to a connection: its engine
        signing = LateSignatures(engine, dataset_id, prepared.late, prepared.counts.keep_signing())
    prepared.close()
    return signing


def write_import(session: Session, dataset_id: int, prepared: Prepared) -> ImportResult:
    """Write a received file's rows in one transaction (commits); any failure leaves the dataset as it was."""
    try:
        imported = write_rows(session, dataset_id, prepared)
        session.commit()
    except BaseException:
        session.rollback()
        prepared.discard()
        raise
    signing = close_import(session, dataset_id, prepared)
    rejections = prepared.rejections
    return ImportResult(
        signing=signing,
        imported=imported,
        rejected=rejections.sample,
        rejected_count=rejections.count,
        lines=prepared.lines,
        import_id=rejections.import_id,
        encoding=prepared.encoding,
        blank_lines=prepared.notes.blank,
        invalid_count=prepared.notes.invalid_count,
        invalid=prepared.notes.invalid,
    )


def receiver(
    kind: str,
    filename: str = "",
    *,
    settings: Settings | None = None,
    dataset_id: int | None = None,
    progress: Progress | None = None,
    expected: str | None = None,
) -> Receiver:
    """A receiver for a file's bytes: 'jsonl', 'csv', or 'auto' (from the file name). With settings, its limits
    apply, rows spool under data_dir/tmp and rejected lines are written under data_dir/imports/<dataset>.
    `expected`: the kind of examples the dataset requires (None: the file's first example decides)."""
    if kind == "auto":
        kind = "csv" if filename.lower().endswith(".csv") else "jsonl"
    if kind not in ("jsonl", "csv"):
        raise Invalid(f"Unknown import format {kind!r}: use 'jsonl' or 'csv'.", param="format")
    limits = Limits.of(settings) if settings is not None else Limits()
    folder = rejections_folder(settings, dataset_id) if settings is not None and dataset_id is not None else None
    spool = settings.data_dir / "tmp" if settings is not None else None
    cls = CsvReceiver if kind == "csv" else JsonlReceiver
    return cls(limits, Rejections(folder), spool, progress, filename, expected)


def start_import(
    session: Session,
    dataset_id: int,
    *,
    filename: str = "",
    kind: str = "auto",
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Receiver:
    """Check that the dataset exists, end that read, and return a receiver for the file (see `receiver`): one
    that refuses a file of the other kind than the dataset requires (datasets.import_kind)."""
    expected = import_kind(session, get_dataset(session, dataset_id))
    session.commit()  # no transaction stays open while the file arrives
    return receiver(kind, filename, settings=settings, dataset_id=dataset_id, progress=progress, expected=expected)


def import_file(
    session: Session,
    dataset_id: int,
    stream: BinaryIO,
    *,
    filename: str = "",
    kind: str = "auto",
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a file by kind ('jsonl', 'csv', or 'auto' from the file name): read it, then write its rows."""
    with start_import(
        session, dataset_id, filename=filename, kind=kind, settings=settings, progress=progress
    ) as receiving:
        while data := stream.read(READ):
            receiving.feed(data)
        prepared = receiving.finish()
    return write_import(session, dataset_id, prepared)


def import_jsonl(
    session: Session,
    dataset_id: int,
    stream: BinaryIO,
    *,
    filename: str = "",
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a JSONL file (chat or prompt/completion lines) into a dataset, in one transaction."""
    return import_file(
        session, dataset_id, stream, filename=filename, kind="jsonl", settings=settings, progress=progress
    )


def import_csv(
    session: Session,
    dataset_id: int,
    stream: BinaryIO,
    *,
    filename: str = "",
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a CSV file with the columns system,user,assistant (header row required) into a dataset."""
    return import_file(session, dataset_id, stream, filename=filename, kind="csv", settings=settings, progress=progress)


def rejections_folder(settings: Settings, dataset_id: int) -> Path:
    """Where a dataset's imports keep their rejected lines."""
    return settings.data_dir / "imports" / str(int(dataset_id))


def _checked(import_id: str) -> str:
    if not (len(import_id) == 16 and all(c in "0123456789abcdef" for c in import_id)):
        raise NotFound("No such import.", code="import_not_found")
    return import_id


def rejected_path(settings: Settings, dataset_id: int, import_id: str) -> Path:
    """Where an import's rejected lines are kept, byte for byte."""
    return raw_path(rejections_folder(settings, dataset_id), _checked(import_id))


def reasons_file(settings: Settings, dataset_id: int, import_id: str) -> Path:
    """Where an import's rejected lines are listed with their numbers and reasons (gzipped JSON lines)."""
    return reasons_path(rejections_folder(settings, dataset_id), _checked(import_id))


def rejected_reasons(settings: Settings, dataset_id: int, import_id: str) -> Iterator[bytes]:
    """An import's rejected lines, `{"line", "code", "message"}` one JSON object a line, for a streamed download.

    NotFound (before anything is streamed) if the import has no such list."""
    path = reasons_file(settings, dataset_id, import_id)
    if not path.is_file():
        raise NotFound("No such import.", code="import_not_found", param="import_id")
    return read_reasons(path)


def iter_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Records of well-formed chat JSONL lines (blank and bad lines skipped): a helper for tests and tools."""
    for text in lines:
        if text.strip():
            record = parse_line(text)[0]
            if record is not None:
                yield record
