"""What the first bytes of an uploaded file say it is: UTF-8 text, UTF-16 text (decoded), or not text at all.

A PNG renamed `.jsonl` once came back as 12,000 "rejected lines" of garbage; a UTF-16 file as one rejected line per
line. The start of the file tells both apart from JSON Lines, so the import says so once instead.
"""

from __future__ import annotations

import codecs

from app.errors import Invalid

SNIFF_BYTES = 4096  # bytes looked at before the first line is read

# Formats people upload by mistake, by their magic bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel/Word file)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
)
# Bytes that never appear in JSON Lines text (tab, line feed and carriage return excepted).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"


def _refuse(what: str) -> Invalid:
    return Invalid(
        f"This is {what}, not JSON Lines text: nothing was imported. Upload a .jsonl file of UTF-8 text, "
        "one JSON object a line.",
        code="not_text",
        param="file",
    )


def sniff(head: bytes) -> str | None:
    """The UTF-16 codec the file needs (None: read it as UTF-8); raises Invalid for a file that is not text."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise _refuse(what)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not head.startswith(codecs.BOM_UTF32_LE):
        return "utf-16"  # the BOM says which byte order, and the decoder drops it
    even, odd = head[0::2], head[1::2]
    # ASCII text in UTF-16 has a NUL in every other byte: odd ones for little-endian, even ones for big-endian.
    if len(head) >= 4:
        if odd.count(0) > 0.4 * len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) == 0:
            return "utf-16-be"
    controls = len(head) - len(head.translate(None, _CONTROL))
    if head.count(0) or controls > 0.1 * len(head):
        raise _refuse("a binary file")
    return None


class Utf16Lines:
    """Decodes a UTF-16 upload as it arrives into the UTF-8 bytes the JSONL reader takes."""

    def __init__(self, codec: str):
        self.codec = codec
        self._decoder = codecs.getincrementaldecoder(codec)()

    def decode(self, data: bytes, final: bool = False) -> bytes:
        """The next bytes as UTF-8 (a character split between calls waits for its other half)."""
        try:
            return self._decoder.decode(data, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid(
                f"The file is UTF-16 text, but it cannot be decoded ({exc.reason}): nothing was imported. "
                "Save it as UTF-8 and upload it again.",
                code="not_text",
                param="file",
            ) from None
