"""Import JSONL (chat or legacy prompt/completion) and CSV into a dataset, streamed, in one transaction.

Every line is accounted for: it becomes an example (flagged invalid if its contents are wrong), or it is
rejected with its line number, a stable code, a plain message and its raw text.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import column, func, insert, select, table
from sqlmodel import Session, col

from app.config import Settings
from app.datasets.datasets import big_cache, get_dataset, touch_dataset
from app.datasets.import_rows import ROW_FIELDS, parse_line, prepare_lines, prepare_record
from app.datasets.json_limits import MAX_JSON_DEPTH
from app.errors import Invalid, NotFound
from app.tables.common import utcnow
from app.tables.dataset import EXAMPLES, Example

__all__ = [
    "ImportResult",
    "RejectedLine",
    "import_csv",
    "import_file",
    "import_jsonl",
    "iter_records",
    "rejected_path",
    "store_rejected",
]

BATCH = 1000  # rows per executemany: large enough to amortise, small enough to keep memory flat
PROGRESS_EVERY = 5000
# A bigger page cache for the import's connection, for the import only. It mattered most while a content-hash
# index took inserts at random places (dropped in migration 0003); every index left is appended to in order, and
# since then the difference is within the shared machine's noise. It stays: it costs memory only while an import
# runs, and the 500 MB import stays under its memory bound with it (bench/README.md).
IMPORT_CACHE_KB = 128_000
CSV_COLUMNS = ("system", "user", "assistant")
Progress = Callable[[int, int], None]  # (lines read, bytes read)

MESSAGES = {
    "invalid_utf8": "The line is not valid UTF-8 text.",
    "invalid_json": "The line is not valid JSON",
    "not_an_object": "The line is JSON but not an object {…}.",
    "missing_messages": "The object has no `messages` list (nor `prompt` and `completion`).",
    "messages_not_a_list": "`messages` is not a list.",
    "invalid_prompt_completion": "`prompt` and `completion` must both be text.",
    "too_deep": f"The line nests lists or objects more than {MAX_JSON_DEPTH} levels deep.",
    "csv_bad_row": "The row does not have exactly the columns system, user, assistant.",
    "csv_missing_header": "The CSV file needs a header row with the columns system, user, assistant.",
}


@dataclass
class RejectedLine:
    """A line that did not become an example. `raw` is its text; `data` its exact bytes."""

    line: int
    code: str
    message: str
    raw: str
    data: bytes = b""

    def as_dict(self) -> dict[str, Any]:
        """The JSON API's shape (without the raw text)."""
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass
class ImportResult:
    """What an import did."""

    imported: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    lines: int = 0
    import_id: str | None = None  # set once the rejected lines are stored for download

    def as_dict(self) -> dict[str, Any]:
        """The JSON API's shape."""
        return {"imported": self.imported, "rejected": [r.as_dict() for r in self.rejected]}


def _reject(result: ImportResult, number: int, code: str, data: bytes, detail: str = "") -> None:
    message = MESSAGES[code] + (f": {detail}." if detail else ("" if MESSAGES[code].endswith(".") else "."))
    raw = data.decode("utf-8", errors="replace")
    result.rejected.append(RejectedLine(number, code, message, raw, data))


# The example's own values (import_rows), then what every row of one import shares, then its position.
_SHARED_COLUMNS = ("dataset_id", "split", "note", "version", "created_at", "updated_at")
# `rev` is the report's change counter (migration 0004): rows stamped with the import's revision are read once by
# the report instead of at every request.
_INSERT_COLUMNS = (*ROW_FIELDS, *_SHARED_COLUMNS, "rev", "position")
# The table with untyped columns: values go to the driver as we prepared them. Serialising the JSON ourselves
# (and converting datetimes once per import) roughly halves the cost of an insert.
_RAW = table("examples", *[column(name) for name in _INSERT_COLUMNS])


class _Writer:
    """Inserts prepared rows (import_rows.ROW_FIELDS) in batches with executemany, in the caller's transaction."""

    def __init__(self, session: Session, dataset_id: int, rev: int):
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
        self.shared = (dataset_id, None, "", 1, sent, sent, rev)
        # Compiled once; executemany then goes straight to the driver (no per-batch statement processing).
        compiled = insert(_RAW).compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        if self.positional and tuple(compiled.positiontup or ()) != _INSERT_COLUMNS:
            raise RuntimeError("unexpected column order in the compiled INSERT")
        self.rows: list[Any] = []
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        """Check, serialise and queue one parsed record."""
        self.add_rows([prepare_record(record)])

    def add_rows(self, prepared: list[tuple]) -> None:
        """Queue prepared rows, in order; full batches are written at once."""
        shared, start = self.shared, self.position
        rows = [row + shared + (position,) for position, row in enumerate(prepared, start)]
        self.position = start + len(rows)
        if self.positional:
            self.rows += rows
        else:
            self.rows += [dict(zip(_INSERT_COLUMNS, values, strict=True)) for values in rows]
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows."""
        if self.rows:
            self.session.connection().exec_driver_sql(self.sql, self.rows)
            self.count += len(self.rows)
            self.rows = []


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    # Reading in fixed blocks keeps memory flat however long the file (a 500 MB upload is never held whole).
    first = True
    for line in iter(stream.readline, b""):
        if first:
            first = False
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
        yield line


def _run(session: Session, dataset_id: int, work: Callable[[_Writer, ImportResult], None]) -> ImportResult:
    get_dataset(session, dataset_id)
    result = ImportResult()
    try:
        with big_cache(session, IMPORT_CACHE_KB):
            # Bumped before any row is written, as the report's change counter asks (app.datasets.datasets).
            rev = touch_dataset(session, dataset_id)
            writer = _Writer(session, dataset_id, rev)
            work(writer, result)
            writer.flush()
            result.imported = writer.count
        session.commit()
    except BaseException:
        # One import is one transaction: any failure leaves the dataset exactly as it was.
        session.rollback()
        raise
    return result


def import_jsonl(
    session: Session, dataset_id: int, stream: BinaryIO, *, filename: str = "", progress: Progress | None = None
) -> ImportResult:
    """Import a JSONL file (chat or prompt/completion lines) into a dataset, in one transaction."""

    def work(writer: _Writer, result: ImportResult) -> None:
        def write(lines: list[bytes], first: int) -> None:
            rows, rejected = prepare_lines(lines, first)
            for number, code, body, detail in rejected:
                _reject(result, number, code, body, detail)
            writer.add_rows(rows)

        read = 0
        number = 0
        batch: list[bytes] = []
        first = 1
        for number, data in enumerate(_lines(stream), start=1):
            read += len(data)
            batch.append(data.rstrip(b"\r\n"))
            if len(batch) >= BATCH:
                write(batch, first)
                batch, first = [], number + 1
            if progress is not None and number % PROGRESS_EVERY == 0:
                progress(number, read)
        if batch:
            write(batch, first)
        result.lines = number
        if progress is not None:
            progress(number, read)

    return _run(session, dataset_id, work)


def _decoded_lines(stream: BinaryIO, bad: set[int]) -> Iterator[str]:
    for number, data in enumerate(_lines(stream), start=1):
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError:
            bad.add(number)
            yield data.decode("utf-8", errors="replace")


def import_csv(
    session: Session, dataset_id: int, stream: BinaryIO, *, filename: str = "", progress: Progress | None = None
) -> ImportResult:
    """Import a CSV file with the columns system,user,assistant (header row required) into a dataset."""

    def work(writer: _Writer, result: ImportResult) -> None:
        bad: set[int] = set()
        reader = csv.reader(_decoded_lines(stream, bad))
        header = next(reader, None)
        names = [h.strip().lower() for h in header] if header else []
        if sorted(names) != sorted(CSV_COLUMNS):
            raw = ",".join(header or [])
            raise Invalid(
                MESSAGES["csv_missing_header"] + f" Found: {raw[:200]!r}.", code="csv_missing_header", param="file"
            )
        index = {name: names.index(name) for name in CSV_COLUMNS}
        last = reader.line_num
        for row in reader:
            first, last = last + 1, reader.line_num
            raw = ",".join(row)
            if not row or not any(cell.strip() for cell in row):
                continue
            if any(n in bad for n in range(first, last + 1)):
                _reject(result, first, "invalid_utf8", raw.encode("utf-8", errors="replace"))
                continue
            if len(row) != len(CSV_COLUMNS):
                _reject(result, first, "csv_bad_row", raw.encode(), f"found {len(row)} columns")
                continue
            cells = {name: row[i] for name, i in index.items()}
            messages = [{"role": "system", "content": cells["system"]}] if cells["system"].strip() else []
            messages += [
                {"role": "user", "content": cells["user"]},
                {"role": "assistant", "content": cells["assistant"]},
            ]
            writer.add({"messages": messages})
            if progress is not None and last % PROGRESS_EVERY == 0:
                progress(last, 0)
        result.lines = last

    return _run(session, dataset_id, work)


def import_file(
    session: Session,
    dataset_id: int,
    stream: BinaryIO,
    *,
    filename: str = "",
    kind: str = "auto",
    progress: Progress | None = None,
) -> ImportResult:
    """Import by kind ('jsonl', 'csv', or 'auto' from the file name)."""
    if kind == "auto":
        kind = "csv" if filename.lower().endswith(".csv") else "jsonl"
    if kind == "csv":
        return import_csv(session, dataset_id, stream, filename=filename, progress=progress)
    if kind == "jsonl":
        return import_jsonl(session, dataset_id, stream, filename=filename, progress=progress)
    raise Invalid(f"Unknown import format {kind!r}: use 'jsonl' or 'csv'.", param="format")


def store_rejected(settings: Settings, dataset_id: int, result: ImportResult) -> str | None:
    """Write the rejected lines' exact bytes to a file for download; returns the import id (None if none)."""
    if not result.rejected:
        return None
    import_id = secrets.token_hex(8)
    path = rejected_path(settings, dataset_id, import_id)
    with path.open("wb") as out:
        for r in result.rejected:
            out.write(r.data + b"\n")
    result.import_id = import_id
    return import_id


def rejected_path(settings: Settings, dataset_id: int, import_id: str) -> Path:
    """Where an import's rejected lines are kept."""
    if not (len(import_id) == 16 and all(c in "0123456789abcdef" for c in import_id)):
        raise NotFound("No such import.", code="import_not_found")
    return settings.storage_path("imports", str(int(dataset_id)), f"{import_id}.rejected.txt")


def iter_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Records of well-formed chat JSONL lines (blank and bad lines skipped): a helper for tests and tools."""
    for text in lines:
        if text.strip():
            record = parse_line(text)[0]
            if record is not None:
                yield record
