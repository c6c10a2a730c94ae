"""Import JSONL (chat or legacy prompt/completion) and CSV into a dataset, streamed, in one transaction.

Every line is accounted for: it becomes an example (flagged invalid if its contents are wrong), or it is
rejected with its line number, a stable code, a plain message and its raw text.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import column, func, insert, select, table
from sqlmodel import Session

from app.config import Settings
from app.models.common import utcnow
from app.models.dataset import Example
from app.services import validation
from app.services.datasets import big_cache, get_dataset, touch_dataset
from app.services.errors import Invalid, NotFound
from app.services.json_limits import MAX_JSON_DEPTH, nesting_depth_exceeds

BATCH = 1000  # rows per executemany: large enough to amortise, small enough to keep memory flat
PROGRESS_EVERY = 5000
# The content-hash index takes inserts at random places; with SQLite's default 2 MB page cache a large import
# keeps re-reading index pages, so the import's connection gets a bigger cache for the import only.
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


class _Row:
    """Just enough of an Example for validation.apply_check, without ORM overhead per line."""

    __slots__ = ("messages", "tools", "extra", "valid", "n_errors", "n_warnings", "problems", "n_messages",
                 "content_hash", "search_text", "token_counts")

    def __init__(self, messages, tools, extra):
        self.messages, self.tools, self.extra = messages, tools, extra

    to_record = Example.to_record


def _reject(result: ImportResult, number: int, code: str, data: bytes, detail: str = "") -> None:
    message = MESSAGES[code] + (f": {detail}." if detail else ("" if MESSAGES[code].endswith(".") else "."))
    raw = data.decode("utf-8", errors="replace")
    result.rejected.append(RejectedLine(number, code, message, raw, data))


def parse_line(text: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """A JSONL line as a record, or (None, code, detail) when it cannot become an example."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, "invalid_json", detail
    except RecursionError:
        return None, "too_deep", ""
    if not isinstance(obj, dict):
        return None, "not_an_object", ""
    # Nesting deeper than the limit needs more opening brackets than the limit: counting them is C-fast, so
    # ordinary lines never pay for the walk.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth_exceeds(obj):
        return None, "too_deep", ""
    if "messages" in obj:
        if not isinstance(obj["messages"], list):
            return None, "messages_not_a_list", ""
        return obj, None, ""
    if "prompt" in obj and "completion" in obj:
        prompt, completion = obj.pop("prompt"), obj.pop("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            return None, "invalid_prompt_completion", ""
        # Legacy completions often start with a space that only separated them from the prompt.
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion.strip()}]
        return {"messages": messages, **obj}, None, ""
    return None, "missing_messages", ""


JSON_COLUMNS = ("messages", "tools", "extra", "problems", "token_counts")
PLAIN_COLUMNS = ("dataset_id", "position", "split", "note", "version", "n_errors", "n_warnings", "n_messages",
                 "content_hash", "search_text")
# The same table with untyped columns: values go to the driver as we prepared them. Serialising the JSON
# ourselves (and converting booleans and datetimes once per import) roughly halves the cost of an insert.
_RAW = table("examples", *[column(name) for name in (*JSON_COLUMNS, *PLAIN_COLUMNS, "valid", "created_at",
                                                      "updated_at")])


def _dump(value: Any) -> str | None:
    # None becomes SQL NULL, which the ORM reads back as None just like a stored JSON null.
    return None if value is None else json.dumps(value)


class _Writer:
    """Collects example rows and inserts them in batches with executemany, inside the caller's transaction."""

    def __init__(self, session: Session, dataset_id: int):
        self.session, self.dataset_id = session, dataset_id
        top = session.execute(select(func.max(Example.position)).where(Example.dataset_id == dataset_id)).scalar()
        self.position = 0 if top is None else top + 1
        dialect = session.get_bind().dialect
        columns = Example.__table__.c
        now = utcnow()
        stamp = columns.created_at.type.bind_processor(dialect)
        self.now = stamp(now) if stamp else now
        flag = columns.valid.type.bind_processor(dialect)
        self.true, self.false = (flag(True), flag(False)) if flag else (True, False)
        # Compiled once; executemany then goes straight to the driver (no per-batch statement processing).
        compiled = insert(_RAW).compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = list(compiled.positiontup) if compiled.positional else None
        self.rows: list[Any] = []
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        tools = record.get("tools")
        extra = {k: v for k, v in record.items() if k not in ("messages", "tools")}
        if "tools" in record and tools is None:
            extra["tools"] = None  # an explicit null survives export
        row = _Row(record["messages"], tools, extra or None)
        validation.apply_check(row)
        values = {
            "messages": json.dumps(row.messages), "tools": _dump(row.tools), "extra": _dump(row.extra),
            "problems": _dump(row.problems), "token_counts": _dump(row.token_counts),
            "dataset_id": self.dataset_id, "position": self.position, "split": None, "note": "", "version": 1,
            "n_errors": row.n_errors, "n_warnings": row.n_warnings, "n_messages": row.n_messages,
            "content_hash": row.content_hash, "search_text": row.search_text,
            "valid": self.true if row.valid else self.false, "created_at": self.now, "updated_at": self.now,
        }
        self.rows.append(tuple(values[k] for k in self.order) if self.order else values)
        self.position += 1
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
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
            writer = _Writer(session, dataset_id)
            work(writer, result)
            writer.flush()
            result.imported = writer.count
            touch_dataset(session, dataset_id)
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
        read = 0
        number = 0
        for number, data in enumerate(_lines(stream), start=1):
            read += len(data)
            body = data.rstrip(b"\r\n")
            if progress is not None and number % PROGRESS_EVERY == 0:
                progress(number, read)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                _reject(result, number, "invalid_utf8", body, f"byte {exc.start + 1} cannot be decoded")
                continue
            if not text.strip():
                continue  # blank lines carry no example
            record, code, detail = parse_line(text)
            if record is None:
                _reject(result, number, code, body, detail)
            else:
                writer.add(record)
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
            raise Invalid(MESSAGES["csv_missing_header"] + f" Found: {raw[:200]!r}.", code="csv_missing_header",
                          param="file")
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
            messages += [{"role": "user", "content": cells["user"]}, {"role": "assistant", "content": cells["assistant"]}]
            writer.add({"messages": messages})
            if progress is not None and last % PROGRESS_EVERY == 0:
                progress(last, 0)
        result.lines = last

    return _run(session, dataset_id, work)


def import_file(session: Session, dataset_id: int, stream: BinaryIO, *, filename: str = "", kind: str = "auto",
                progress: Progress | None = None) -> ImportResult:
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
            record, _code, _detail = parse_line(text)
            if record is not None:
                yield record
