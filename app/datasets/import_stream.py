"""The receiving half of an import: bytes as they arrive → lines → checked rows in a spool. No database.

An import runs in two phases so that no write transaction ever waits on the network (a client trickling an
upload for a minute once held SQLite's write lock all that time): a receiver takes the file's bytes at the
client's pace, parses, checks and serialises each line as it comes, and spools the rows (in memory, then in an
unlinked temporary file); the importer then writes them in one transaction that only inserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from app.datasets.file_sniff import SNIFF_BYTES, Utf16Lines, sniff
from app.datasets.import_rows import (
    LineNotes,
    line_kind,
    line_too_long,
    prepare_lines,
)
from app.datasets.import_tokens import Counted, ImportCounts, Signatures
from app.datasets.kinds import kind_mismatch
from app.datasets.limits import Limits
from app.datasets.rejections import Rejections
from app.datasets.row_spool import RowSpool
from app.errors import Invalid
from app.tables.dataset import PREFERENCE, SUPERVISED

BATCH = 1000  # lines per prepare_lines call and rows per spooled block
PROGRESS_EVERY = 5000
BOM = b"\xef\xbb\xbf"
Progress = Callable[[int, int], None]  # (lines read, bytes read)


@dataclass
class Prepared:
    """A received file: its rows ready to insert, how many lines it had, and what was rejected."""

    rows: RowSpool
    lines: int
    rejections: Rejections
    encoding: str = "utf-8"  # what the file was decoded from ("utf-16-le": a UTF-16 file, read as such)
    notes: LineNotes = field(default_factory=LineNotes)  # blank lines and lines imported as invalid examples
    counts: ImportCounts = field(default_factory=ImportCounts)  # each spooled block's token counts
    source_file: str | None = None  # the file's name, as each example keeps it (None: no name was given)
    kind: str = SUPERVISED  # what its examples are: chat examples or preference pairs (its first example's shape)
    # Blocks written before their signatures were made: (first row's position, signatures to come).
    late: list[tuple[int, Future[Signatures | None]]] = field(default_factory=list)

    def batches(self) -> Iterator[tuple[list[tuple], Counted | None]]:
        """Each block of rows with its token counts and signatures (None: not counted; the report will)."""
        texts = self.counts.texts()
        for rows in self.rows.batches():
            yield rows, next(texts, None)

    def close(self) -> None:
        """The rows are written: drop the spool, keep the rejection files."""
        self.rows.close()
        self.counts.close()
        self.rejections.close()

    def discard(self) -> None:
        """The import failed: drop the spool and the rejection files."""
        self.rows.close()
        self.counts.close()
        self.rejections.discard()


class Receiver:
    """Takes an upload's bytes in order (feed), then hands over what they hold (finish). Used as a context
    manager, it discards everything if the block fails (a client gone, a limit, a bad header)."""

    def __init__(
        self,
        limits: Limits,
        rejections: Rejections,
        spool_dir: Path | None,
        progress: Progress | None,
        filename: str = "",
        expected: str | None = None,
    ):
        self.limits, self.rejections, self.progress = limits, rejections, progress
        # The kind the dataset requires (None: any; the file's first example decides) and the file's own.
        self.expected, self.kind = expected, expected
        self.rows = RowSpool(spool_dir)
        self.counts = ImportCounts()
        self.source_file = source_name(filename)
        self.received = 0
        self.encoding = "utf-8"
        self.notes = LineNotes()

    def _add(self, rows: list[tuple]) -> None:
        """Spool a block of rows and start counting their tokens."""
        if rows:
            block = self.rows.add(rows)
            # The import's counter counts chat rows; the report counts pairs (their signatures are made here too).
            self.counts.add(block, len(rows), count=self.kind != PREFERENCE)

    def _prepared(self, lines: int) -> Prepared:
        kind = self.kind or SUPERVISED
        return Prepared(
            self.rows, lines, self.rejections, self.encoding, self.notes, self.counts, self.source_file, kind
        )

    def feed(self, data: bytes) -> None:
        """The next bytes of the file."""
        self.received += len(data)
        if self.received > self.limits.upload_bytes:
            raise Invalid(
                f"The file is larger than {self.limits.upload_bytes:,} bytes (setting max_upload_bytes).",
                code="file_too_large",
                param="file",
            )
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> Prepared:
        """The file has ended: its rows and rejections."""
        raise NotImplementedError

    def discard(self) -> None:
        """Drop everything received."""
        self.rows.close()
        self.counts.close()
        self.rejections.discard()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self.discard()


class JsonlReceiver(Receiver):
    """JSONL: lines are cut out of the bytes as they come and prepared a thousand at a time."""

    def __init__(
        self,
        limits: Limits,
        rejections: Rejections,
        spool_dir: Path | None,
        progress: Progress | None,
        filename: str = "",
        expected: str | None = None,
    ):
        super().__init__(limits, rejections, spool_dir, progress, filename, expected)
        self.kind = None  # the first line that is an example sets it
        self._head = b""  # the first bytes, until there are enough to tell what the file is
        self._at_start = True
        self._utf16: Utf16Lines | None = None  # set when the file is UTF-16 text
        self._pending = b""  # the start of a line whose end has not come yet
        self._skipping = False  # inside a line over max_line_bytes: its bytes go straight to the rejection file
        self._next = 1  # number of the next line to come
        self._batch: list[bytes] = []
        self._batch_first = 1
        self._consumed = 0  # bytes of the lines counted so far (for progress)

    def _feed(self, data: bytes) -> None:
        if self._at_start:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return
            data = self._start()
        elif self._utf16 is not None:
            data = self._utf16.decode(data)
        self._lines(data)

    def _start(self) -> bytes:
        """The first bytes: refuse a file that is not text, decode UTF-16, drop a UTF-8 BOM."""
        data, self._at_start, self._head = self._head, False, b""
        codec = sniff(data)
        if codec is not None:
            self._utf16 = Utf16Lines(codec)
            self.encoding = codec
            data = self._utf16.decode(data)
        return data[len(BOM) :] if data.startswith(BOM) else data

    def _lines(self, data: bytes) -> None:
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                self.rejections.more(data)
                self._consumed += len(data)
                return
            self.rejections.more(data[:end].rstrip(b"\r"))
            self.rejections.end()
            self._skipping = False
            self._consumed += end + 1
            data = data[end + 1 :]
        lines = data.split(b"\n")
        if self._pending:
            lines[0] = self._pending + lines[0]
        tail = lines.pop()
        self._complete(lines)
        if len(tail) > self.limits.line_bytes:
            # Never held whole: the line is rejected now and the rest of it streams to the rejection file.
            self._flush()  # the lines before it first, so rejections stay in file order
            number = self._next
            self._next += 1
            self._batch_first = self._next
            self.rejections.add(number, "line_too_long", tail, line_too_long(self.limits), complete=False)
            self._skipping, self._pending = True, b""
            self._consumed += len(tail)
        else:
            self._pending = tail

    def _complete(self, lines: list[bytes]) -> None:
        i, n = 0, len(lines)
        while i < n:
            j = min(n, i + BATCH - len(self._batch))
            chunk = lines[i:j]
            if self.progress is not None:
                for offset, line in enumerate(chunk):
                    self._consumed += len(line) + 1
                    number = self._next + offset
                    if number % PROGRESS_EVERY == 0:
                        self.progress(number, self._consumed)
            self._batch += [line.rstrip(b"\r") for line in chunk]
            self._next += j - i
            if len(self._batch) >= BATCH:
                self._flush()
            i = j

    def _flush(self) -> None:
        if self._batch:
            if self.kind is None:
                self._decide_kind()
            kind = self.kind or SUPERVISED
            rows, rejected = prepare_lines(self._batch, self._batch_first, self.limits, self.notes, kind)
            self.rejections.add_many(rejected)
            self._add(rows)
            self._batch = []
        self._batch_first = self._next

    def _decide_kind(self) -> None:
        """The file's kind is its first example's; a dataset of the other kind refuses the file at once."""
        for number, body in enumerate(self._batch, start=self._batch_first):
            kind = line_kind(body)
            if kind is not None:
                if self.expected is not None and kind != self.expected:
                    raise kind_mismatch(self.expected, kind, number)
                self.kind = kind
                return

    def finish(self) -> Prepared:
        """The file has ended: its last line (with or without a final newline), rows and rejections."""
        if self._at_start:
            self._lines(self._start())
        if self._utf16 is not None:
            self._lines(self._utf16.decode(b"", final=True))
        if self._skipping:
            self.rejections.end()
            self._skipping = False
        elif self._pending:
            self._complete([self._pending])
            self._pending = b""
        self._flush()
        lines = self._next - 1
        if self.progress is not None:
            self.progress(lines, self.received)
        return self._prepared(lines)


def source_name(filename: str) -> str | None:
    """The name an upload's examples keep as their source: the last part of a path, at most 255 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or None
