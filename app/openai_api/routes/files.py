"""OpenAI-compatible /v1/files: upload (becomes a dataset), list, retrieve, download, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from app.openai_api import files
from app.openai_api import shapes as openai_shapes
from app.web.rendering import SessionDep

router = APIRouter(prefix="/v1/files", tags=["v1"])


@router.post("")
def create_file(
    request: Request, session: SessionDep, file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]
):
    """Upload a JSONL training file."""
    row = files.create_file(
        session, request.app.state.settings, file.file, filename=file.filename or "", purpose=purpose
    )
    return openai_shapes.file_object(row)


@router.get("")
def list_files(
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query()] = files.MAX_LIST,
    order: str = "desc",
    purpose: str | None = None,
):
    """Files, newest first, with OpenAI's cursor pagination."""
    rows, has_more = files.list_files(session, after=after, limit=limit, order=order, purpose=purpose)
    return openai_shapes.list_envelope([openai_shapes.file_object(r) for r in rows], has_more)


@router.get("/{file_id}")
def retrieve_file(session: SessionDep, file_id: str):
    """One file's metadata."""
    return openai_shapes.file_object(files.get_file(session, file_id))


@router.get(
    "/{file_id}/content",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def file_content(request: Request, session: SessionDep, file_id: str):
    """The file's bytes exactly as uploaded, streamed from disk."""
    path, row = files.file_content(session, request.app.state.settings, file_id)
    return FileResponse(path, media_type="application/octet-stream", filename=row.filename)


@router.delete("/{file_id}")
def delete_file(request: Request, session: SessionDep, file_id: str):
    """Delete a file (the dataset it became stays)."""
    row = files.delete_file(session, request.app.state.settings, file_id)
    return openai_shapes.file_deleted(row.id)
