"""A multipart file field read as a stream while the request body arrives (web layer: it speaks HTTP)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import anyio.from_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:  # the library defines its callback TypedDict for type checkers only
    from python_multipart.multipart import MultipartCallbacks

HANDOVER_BYTES = 1 << 20


class StreamedUpload(io.RawIOBase):
    """The file in one field of a multipart request, read (from a worker thread) while the body still arrives.

    FastAPI's form parsing would first copy the whole upload into a temporary file, which takes about as long as
    a third of the import itself (bench/README.md, "Datasets"). Here the importer reads each received chunk as it
    comes, so memory stays flat whatever the size and the upload and the import overlap.
    """

    def __init__(self, request: Request, field: str):
        self.field = field
        self.filename: str | None = None
        self._chunks = request.stream()
        _, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }
        self._parser = MultipartParser(boundary, callbacks) if boundary else None
        self._header_name = self._header_value = self._disposition = b""
        self._in_file = self._file_done = self._body_done = False
        self._received: list[bytes] = []  # file bytes parsed from the body, not yet handed to the reader
        self._received_bytes = 0
        self._unread = memoryview(b"")  # handed over, not yet read

    async def start(self) -> None:
        """Read the body up to the file's data (its part's headers name the file); 422 if there is no such field."""
        while self.filename is None and not self._body_done:
            await self._feed()
        if self.filename is None:
            # The same answer FastAPI gives for a missing required File() field.
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body", self.field), "msg": "Field required", "input": None}]
            )

    async def finish(self) -> None:
        """Read what follows the file (closing boundary, later fields), so the client always gets the response."""
        async for _ in self._chunks:
            pass

    async def _feed(self) -> None:
        if self._parser is None:  # not a multipart body: there is no file in it to find
            self._body_done = True
            return
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._body_done = True
            return
        try:
            self._parser.write(chunk)
        except FormParserError:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body",), "msg": "Invalid multipart data.", "input": None}]
            ) from None

    async def _next_data(self) -> bytes:
        # A megabyte or so per hand-over: each one costs the two threads a switch.
        while self._received_bytes < HANDOVER_BYTES and not self._file_done and not self._body_done:
            await self._feed()
        if self._body_done and not self._file_done:
            # Never import a cut-off file as if it were whole.
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", self.field),
                        "msg": "The upload ended in the middle of the file.",
                        "input": None,
                    }
                ]
            )
        data = b"".join(self._received)
        self._received.clear()
        self._received_bytes = 0
        return data

    def readable(self) -> bool:
        """A readable binary stream (io.BufferedReader wraps it)."""
        return True

    def readinto(self, buffer) -> int:
        """Called by the importer's thread: the next bytes of the file (0 at its end)."""
        if not self._unread:
            self._unread = memoryview(anyio.from_thread.run(self._next_data))
        n = min(len(buffer), len(self._unread))
        buffer[:n] = self._unread[:n]
        self._unread = self._unread[n:]
        return n

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if name == self.field and b"filename" in options and self.filename is None:
            self.filename = options[b"filename"].decode("utf-8", errors="replace")
            self._in_file = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._received.append(data[start:end])
            self._received_bytes += end - start

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file, self._file_done = False, True

    def reader(self) -> io.BufferedReader:
        """A buffered binary file over this upload, for a worker thread (the importer) to read line by line."""
        return io.BufferedReader(self, buffer_size=1 << 16)
