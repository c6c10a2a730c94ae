"""An import's checked rows between reading and writing: in memory up to a bound, then in a temporary file."""

from __future__ import annotations

import marshal
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SPOOL_MEMORY = 64 << 20  # bytes of spooled rows kept in memory before the rest go to a temporary file
_LENGTH = struct.Struct("<Q")


def ensure_dir(folder: Path | None) -> str | None:
    """The folder as a path string for tempfile, created if needed (None: the system's temporary folder)."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


class RowSpool:
    """Prepared rows (import_rows.IMPORT_FIELDS), block after block: the first SPOOL_MEMORY bytes in memory, the
    rest in a temporary file.

    Blocks are marshalled (the fastest round trip for tuples of str, int, bool and None) and stay bytes: compact,
    and never copied again when the file takes over.
    """

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.blocks: list[bytes] = []
        self.in_memory = 0
        self.file: IO[bytes] | None = None
        self.count = 0

    def add(self, rows: list[tuple]) -> bytes:
        """Append a block of rows; returns it marshalled (the token counter reads the same bytes)."""
        block = marshal.dumps(rows)
        if not rows:
            return block
        self.count += len(rows)
        if self.file is None and self.in_memory + len(block) <= SPOOL_MEMORY:
            self.blocks.append(block)
            self.in_memory += len(block)
            return block
        if self.file is None:
            # Unlinked at once (an anonymous file), so even a kill -9 leaves nothing behind.
            self.file = tempfile.TemporaryFile(dir=ensure_dir(self.folder))  # noqa: SIM115 (closed by close())
        self.file.write(_LENGTH.pack(len(block)))
        self.file.write(block)
        return block

    def batches(self) -> Iterator[list[tuple]]:
        """The blocks, in order."""
        for block in self.blocks:
            yield marshal.loads(block)
        if self.file is not None:
            self.file.seek(0)
            while header := self.file.read(_LENGTH.size):
                (size,) = _LENGTH.unpack(header)
                yield marshal.loads(self.file.read(size))

    def close(self) -> None:
        """Free the memory and the temporary file."""
        self.blocks, self.in_memory = [], 0
        if self.file is not None:
            self.file.close()
            self.file = None
