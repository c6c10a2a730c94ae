"""The CSV half of an import's receiving side (import_stream.py has the JSONL one): columns system, user,
assistant; a quoted cell may span lines, so the file is spooled as it comes and read at its end."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from app.datasets.import_rows import line_too_long, over_limits, prepare_record
from app.datasets.import_stream import BATCH, BOM, PROGRESS_EVERY, Prepared, Progress, Receiver
from app.datasets.kinds import kind_mismatch
from app.datasets.limits import Limits
from app.datasets.rejections import MESSAGES, Rejections
from app.datasets.row_spool import ensure_dir
from app.errors import Invalid
from app.tables.dataset import PREFERENCE, SUPERVISED

RAW_MEMORY = 8 << 20  # bytes of a CSV file kept in memory before it goes to a temporary file
CSV_COLUMNS = ("system", "user", "assistant")


class CsvReceiver(Receiver):
    """CSV: a quoted cell may span lines, so the file is spooled as it comes and read as CSV at its end."""

    def __init__(
        self,
        limits: Limits,
        rejections: Rejections,
        spool_dir: Path | None,
        progress: Progress | None,
        filename: str = "",
        expected: str | None = None,
    ):
        if expected == PREFERENCE:
            raise kind_mismatch(PREFERENCE, SUPERVISED)  # CSV rows are chat examples
        super().__init__(limits, rejections, spool_dir, progress, filename, SUPERVISED)
        self._raw: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=RAW_MEMORY, dir=ensure_dir(spool_dir))  # noqa: SIM115

    def _feed(self, data: bytes) -> None:
        self._raw.write(data)

    def discard(self) -> None:
        """Drop everything received."""
        self._raw.close()
        super().discard()

    def finish(self) -> Prepared:
        """Read the spooled file as CSV (header row required) into rows and rejections."""
        self._raw.seek(0)
        lines = self._read(self._raw)
        self._raw.close()
        if self.progress is not None:
            self.progress(lines, self.received)
        return self._prepared(lines)

    def _physical_lines(self, stream: IO[bytes], too_long: list[int], bad: set[int]) -> Iterator[str]:
        limit = self.limits.line_bytes
        number = 0
        while line := stream.readline(limit + 3):  # room for the line end
            number += 1
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            if len(line.rstrip(b"\r\n")) > limit:
                while not line.endswith(b"\n") and (line := stream.readline(1 << 20)):
                    pass  # the rest of the line, read in bounded pieces and dropped
                too_long.append(number)
                yield "\n"  # an empty line in its place: the reader still counts it
                continue
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                bad.add(number)
                yield line.decode("utf-8", errors="replace")

    def _read(self, stream: IO[bytes]) -> int:
        limits, rejections = self.limits, self.rejections
        # The csv module's cell limit is process-wide (128 KiB by default; a longer cell raised a bare 500): it
        # only ever grows, to the longest line allowed, so a cell as long as an accepted line reads.
        csv.field_size_limit(max(csv.field_size_limit(), limits.line_bytes))
        bad: set[int] = set()
        too_long: list[int] = []
        reader = csv.reader(self._physical_lines(stream, too_long, bad))
        header = next(reader, None)
        names = [h.strip().lower() for h in header] if header else []
        if sorted(names) != sorted(CSV_COLUMNS):
            raw = ",".join(header or [])
            raise Invalid(
                MESSAGES["csv_missing_header"] + f" Found: {raw[:200]!r}.", code="csv_missing_header", param="file"
            )
        index = {name: names.index(name) for name in CSV_COLUMNS}
        last = reader.line_num
        batch: list[tuple] = []

        def long_lines_through(number: int) -> None:
            while too_long and too_long[0] <= number:
                rejections.add(too_long.pop(0), "line_too_long", b"", line_too_long(limits))

        while True:
            try:
                row = next(reader, None)
            except csv.Error as exc:
                if reader.line_num == last:
                    break  # nothing left to read past the error
                first, last = last + 1, reader.line_num
                long_lines_through(last)
                rejections.add(first, "csv_unreadable", b"", _csv_error(exc))
                continue
            if row is None:
                break
            first, last = last + 1, reader.line_num
            long_lines_through(last)
            if not row or not any(cell.strip() for cell in row):
                self.notes.blank += 1
                continue
            raw = ",".join(row)
            if any(n in bad for n in range(first, last + 1)):
                rejections.add(first, "invalid_utf8", raw.encode("utf-8", errors="replace"))
                continue
            if len(row) != len(CSV_COLUMNS):
                rejections.add(first, "csv_bad_row", raw.encode(), f"found {len(row)} columns")
                continue
            cells = {name: row[i] for name, i in index.items()}
            messages = [{"role": "system", "content": cells["system"]}] if cells["system"].strip() else []
            messages += [
                {"role": "user", "content": cells["user"]},
                {"role": "assistant", "content": cells["assistant"]},
            ]
            record = {"messages": messages}
            prepared = prepare_record(record)
            problem = over_limits(record, prepared, limits)
            if problem is not None:
                rejections.add(first, problem[0], raw.encode(), problem[1])
                continue
            batch.append((*prepared, first))
            self.notes.row(first, prepared)
            if len(batch) >= BATCH:
                self._add(batch)
                batch = []
            if self.progress is not None and last % PROGRESS_EVERY == 0:
                self.progress(last, 0)
        self._add(batch)
        long_lines_through(last)
        return last


def _csv_error(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        return f"a cell is longer than {csv.field_size_limit():,} characters (setting max_line_bytes)"
    return str(exc)
