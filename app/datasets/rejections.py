"""The lines an import rejects: all counted and written to files for download, the first few kept in memory.

A file of two million bad lines once came back as a 215 MB response from a server grown by 1.5 GB; now memory
holds a sample of SAMPLE lines (each cut to SAMPLE_BYTES) and the full account goes to two files in the data dir:
`<id>.rejected.txt`, every rejected line's exact bytes (to fix and import again), and `<id>.reasons.jsonl.gz`,
one `{"line", "code", "message"}` per rejected line, in file order. That list is gzipped (level 1, nearly free):
a sentence per two-byte line would otherwise turn a 4 GB upload of bad lines into 200 GB of disk.
"""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.datasets.json_limits import MAX_JSON_DEPTH

_string = json.JSONEncoder().encode  # a str as a JSON string
SAMPLE = 1000  # rejected lines kept in memory and returned with the import's result
SAMPLE_BYTES = 4096  # bytes of each sampled line kept (the page shows 160 characters)

MESSAGES = {
    "invalid_utf8": "The line is not valid UTF-8 text.",
    "invalid_json": "The line is not valid JSON",
    "not_an_object": "The line is JSON but not an object {…}.",
    "missing_messages": "The object has no `messages` list (nor `prompt` and `completion`).",
    "messages_not_a_list": "`messages` is not a list.",
    "invalid_prompt_completion": "`prompt` and `completion` must both be text.",
    "input_not_a_conversation": "The preference example's `input` is not an object with a `messages` list.",
    "answer_not_a_list": "A preference example's answers must be lists of one assistant message",
    "wrong_shape": "The line's shape differs from the file's",
    "too_deep": f"The line nests lists or objects more than {MAX_JSON_DEPTH} levels deep.",
    "non_finite_number": "The line holds a number JSON cannot carry (NaN, Infinity, or too large, such as 1e400)",
    "line_too_long": "The line is too long",
    "message_too_long": "A message is too long",
    "example_too_large": "The example is too large",
    "csv_bad_row": "The row does not have exactly the columns system, user, assistant.",
    "csv_unreadable": "The row cannot be read as CSV",
    "csv_missing_header": "The CSV file needs a header row with the columns system, user, assistant.",
}
# Codes whose detail is the whole sentence (it names the limit and its setting).
_DETAIL_ONLY = frozenset({"line_too_long", "message_too_long", "example_too_large"})


def message_for(code: str, detail: str = "") -> str:
    """The plain sentence for a rejection code and its detail."""
    if detail and code in _DETAIL_ONLY:
        return detail
    base = MESSAGES[code]
    if detail:
        # "The line is not valid UTF-8 text: byte 2 ...", not "text.: byte 2": the base loses its full stop.
        return f"{base.rstrip('.')}: {detail.rstrip('.')}."
    return base if base.endswith(".") else base + "."


@dataclass
class RejectedLine:
    """A line that did not become an example. `raw` is its text; `data` its bytes (the first SAMPLE_BYTES)."""

    line: int
    code: str
    message: str
    raw: str
    data: bytes = b""

    def as_dict(self) -> dict[str, Any]:
        """The JSON API's shape (without the raw text)."""
        return {"line": self.line, "code": self.code, "message": self.message}


class Rejections:
    """Every rejected line of one import: counted, the first SAMPLE kept, all written to files when a folder is
    given (None: count and sample only, as /v1/files does). Files appear with the first rejection."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.count = 0
        self.sample: list[RejectedLine] = []
        self.import_id: str | None = None
        self._raw: IO[bytes] | None = None
        self._reasons: IO[str] | None = None
        self._open_line = False  # the last line's bytes are still arriving (a line over max_line_bytes)

    def add(self, number: int, code: str, data: bytes, detail: str = "", *, complete: bool = True) -> None:
        """Record a rejected line; with complete=False its further bytes come through more() and end()."""
        message = message_for(code, detail)
        self.count += 1
        if len(self.sample) < SAMPLE:
            self._keep(number, code, message, data)
        if not self._ready_to_write():
            return
        assert self._raw is not None and self._reasons is not None
        self._reasons.write(f'{{"line": {number}, "code": {_string(code)}, "message": {_string(message)}}}\n')
        self._raw.write(data)
        if complete:
            self._raw.write(b"\n")
        self._open_line = not complete

    def add_many(self, rejected: list[tuple[int, str, bytes, str]]) -> None:
        """Record (line number, code, bytes, detail) of several complete lines (one write per file)."""
        if not rejected:
            return
        room = SAMPLE - len(self.sample)
        for number, code, data, detail in rejected[:room]:
            self._keep(number, code, message_for(code, detail), data)
        self.count += len(rejected)
        if not self._ready_to_write():
            return
        assert self._raw is not None and self._reasons is not None
        # Millions of rejected lines repeat a handful of reasons: each sentence is built and encoded once.
        said: dict[tuple[str, str], str] = {}
        reasons = []
        for number, code, _, detail in rejected:
            text = said.get((code, detail))
            if text is None:
                text = said[code, detail] = (
                    f'"code": {_string(code)}, "message": {_string(message_for(code, detail))}}}\n'
                )
            reasons.append(f'{{"line": {number}, {text}')
        self._reasons.write("".join(reasons))
        self._raw.write(b"".join([r[2] + b"\n" for r in rejected]))

    def _keep(self, number: int, code: str, message: str, data: bytes) -> None:
        head = data[:SAMPLE_BYTES]
        self.sample.append(RejectedLine(number, code, message, head.decode("utf-8", errors="replace"), head))

    def _ready_to_write(self) -> bool:
        """Whether rejections go to files; if so they are open and any line still arriving is ended."""
        if self.folder is None:
            return False
        if self._raw is None:
            self._open_files()
        self.end()
        return True

    def more(self, data: bytes) -> None:
        """More bytes of the open line (added with complete=False)."""
        if self._raw is not None and self._open_line:
            self._raw.write(data)

    def end(self) -> None:
        """The open line is complete."""
        if self._raw is not None and self._open_line:
            self._raw.write(b"\n")
        self._open_line = False

    def _open_files(self) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.import_id = secrets.token_hex(8)
        self._raw = raw_path(self.folder, self.import_id).open("wb")
        reasons = reasons_path(self.folder, self.import_id)
        self._reasons = gzip.open(reasons, "wt", compresslevel=1, encoding="utf-8")  # noqa: SIM115 (close())

    def close(self) -> None:
        """Finish the files (kept for download)."""
        self.end()
        for stream in (self._raw, self._reasons):
            if stream is not None:
                stream.close()

    def discard(self) -> None:
        """Close and delete the files: the import failed, so nothing of it is kept."""
        self.close()
        if self.folder is not None and self.import_id is not None:
            raw_path(self.folder, self.import_id).unlink(missing_ok=True)
            reasons_path(self.folder, self.import_id).unlink(missing_ok=True)
        self.import_id = None


def raw_path(folder: Path, import_id: str) -> Path:
    """The file of an import's rejected lines, byte for byte."""
    return folder / f"{import_id}.rejected.txt"


def reasons_path(folder: Path, import_id: str) -> Path:
    """The file listing an import's rejected lines (gzipped): number, code and message, one JSON object a line."""
    return folder / f"{import_id}.reasons.jsonl.gz"


def read_reasons(path: Path, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """The list of rejected lines as plain JSON lines, in pieces (for a streamed download)."""
    with gzip.open(path, "rb") as stream:
        while data := stream.read(chunk):
            yield data
