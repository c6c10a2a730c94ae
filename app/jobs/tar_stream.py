"""A directory as an uncompressed tar, streamed in chunks: its length is known before the first byte, and no file
is ever read whole into memory (a merged model's weights are hundreds of megabytes)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_END = b"\0" * (2 * _BLOCK)  # two empty blocks close a tar


def _members(directory: Path, prefix: str) -> list[tuple[Path, bytes, int]]:
    """(file, its header, its size) of each regular file, sorted, under prefix/ in the archive."""
    out = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        info = tarfile.TarInfo(f"{prefix}/{path.relative_to(directory).as_posix()}")
        stat = path.stat()
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
        out.append((path, info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), stat.st_size))
    return out


def _padding(size: int) -> int:
    return -size % _BLOCK


def tar_size(directory: Path, prefix: str) -> int:
    """The length in bytes of tar_chunks(directory, prefix)."""
    return sum(len(head) + size + _padding(size) for _, head, size in _members(directory, prefix)) + len(_END)


def tar_chunks(directory: Path, prefix: str) -> Iterator[bytes]:
    """The tar of directory's files (under prefix/), chunk by chunk."""
    for path, head, size in _members(directory, prefix):
        yield head
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        if _padding(size):
            yield b"\0" * _padding(size)
    yield _END


def file_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes, chunk by chunk."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
