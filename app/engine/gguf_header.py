"""A GGUF file's metadata and tensor sizes, read from its header without reading its tensors or its vocabulary.

Why not gguf.GGUFReader: it builds a numpy view for every item of every array (a 49,152-token vocabulary is
~250,000 views), which took 2–9 s for SmolLM2's file on every visit of the base models page. Here an array of
strings is stepped over by its lengths and kept as a count; every other value is read with struct from a memory
map. Layout (GGUF v2/v3, little-endian): magic, version, tensor count, metadata count, the metadata (key, type,
value), then each tensor's name, dimensions, type and offset.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Value types (gguf's GGUFValueType): scalar formats; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFHeader:
    """Scalar and string metadata by key; arrays as their length (`array_lengths`); the tensors' element count."""

    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)
    n_elements: int = 0
    n_tensors: int = 0


class _Cursor:
    def __init__(self, data: mmap.mmap):
        self.data, self.at = data, 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        end = self.at + length
        if end > len(self.data):
            raise ValueError("a string runs past the end of the file")
        text = bytes(self.data[self.at : end]).decode("utf-8", errors="replace")
        self.at = end
        return text

    def skip_strings(self, count: int) -> None:
        data, at = self.data, self.at
        for _ in range(count):
            at += 8 + struct.unpack_from("<Q", data, at)[0]
        if at > len(data):
            raise ValueError("an array runs past the end of the file")
        self.at = at

    def value(self, kind: int) -> tuple[Any, int | None]:
        """(value, None) for a scalar or string; (None, length) for an array, stepped over."""
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind]), None
        if kind == _STRING:
            return self.string(), None
        if kind != _ARRAY:
            raise ValueError(f"unknown GGUF value type {kind}")
        item, count = self.unpack("<I"), self.unpack("<Q")
        if item == _STRING:
            self.skip_strings(count)
        elif item in _SCALARS:
            self.at += count * struct.calcsize(_SCALARS[item])
        else:
            for _ in range(count):  # arrays of arrays: rare, stepped over one by one
                self.value(item)
        return None, count


def read_gguf_header(path: Path) -> GGUFHeader:
    """The header of a GGUF file; ValueError when it is not one (or is cut short)."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path.name} is not a GGUF file.")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return _parse(_Cursor(data))
            except struct.error as exc:
                raise ValueError(f"{path.name} ends inside its GGUF header.") from exc


def _parse(cursor: _Cursor) -> GGUFHeader:
    cursor.at = 4
    version = cursor.unpack("<I")
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old to read (2 or later).")
    header = GGUFHeader()
    header.n_tensors = n_tensors = cursor.unpack("<Q")
    n_metadata = cursor.unpack("<Q")
    for _ in range(n_metadata):
        key = cursor.string()
        value, length = cursor.value(cursor.unpack("<I"))
        if length is None:
            header.metadata[key] = value
        else:
            header.array_lengths[key] = length
    for _ in range(n_tensors):
        cursor.string()  # name
        dims = [cursor.unpack("<Q") for _ in range(cursor.unpack("<I"))]
        cursor.at += 4 + 8  # type, offset
        elements = 1
        for dim in dims:
            elements *= dim
        header.n_elements += elements
    return header
