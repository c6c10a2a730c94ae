"""A multipart file field read as a stream while the request body arrives, and the limits every request body
obeys (web layer: it speaks HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # the library defines its callback TypedDict for type checkers only
    from python_multipart.multipart import MultipartCallbacks

HANDOVER_BYTES = 1 << 20


class StreamedUpload:
    """The file in one field of a multipart request, handed over about a megabyte at a time as the body arrives.

    FastAPI's form parsing would first copy the whole upload into a temporary file, which takes about as long as
    a third of the import itself (bench/README.md, "Datasets"). Here the importer takes each received piece as it
    comes (`chunks`), so memory stays flat whatever the size and the upload and the import overlap; no thread
    waits on the network meanwhile.
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
        # A megabyte or so per hand-over: each one costs a trip to a worker thread.
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

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, in pieces of about HANDOVER_BYTES, until its end."""
        while data := await self._next_data():
            yield data

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


UPLOAD_SLACK_BYTES = 1 << 20  # the multipart form around a file: boundaries, part headers, small fields


class BodyLimits:
    """Every request body obeys two limits (pure ASGI, so forms, files and JSON alike): one that sends nothing
    for `idle_timeout` seconds is cut off with 408, and one larger than `max_bytes` is refused with 413 (as soon
    as it is read when its Content-Length says so). The error is raised where the body is read, so each area
    answers in its own error shape (OpenAI's on /v1, JSON on /api, a page or a flash message on the dashboard).
    Once the body is complete, waiting for the client to disconnect (a streamed response) has no time limit."""

    def __init__(self, app: ASGIApp, *, idle_timeout: float, max_bytes: int):
        self.app, self.idle_timeout, self.max_bytes = app, idle_timeout, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0
        body_done = False

        async def guarded() -> Message:
            nonlocal received, body_done
            if body_done:  # later calls wait for the client to go away (streamed responses): no time limit
                return await receive()
            if declared is not None and declared > self.max_bytes:
                raise _too_large(self.max_bytes)
            try:
                with anyio.fail_after(self.idle_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"The request body stopped arriving: nothing came for {self.idle_timeout:g} seconds "
                    "(setting upload_idle_timeout_seconds). Nothing was saved; send it again.",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _too_large(self.max_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, guarded, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(max_bytes: int) -> HTTPException:
    limit = max_bytes - UPLOAD_SLACK_BYTES
    return HTTPException(
        413, f"The request body is larger than the {limit:,}-byte upload limit (setting max_upload_bytes)."
    )
