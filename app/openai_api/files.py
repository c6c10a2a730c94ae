"""Files uploaded through /v1/files: kept byte for byte on disk and imported into a dataset named after them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import create_dataset
from app.datasets.importer import RejectedLine, import_jsonl
from app.errors import DomainError, Invalid, NotFound
from app.settings.maintenance import require_maintenance
from app.tables import UploadedFile
from app.tables.common import utcnow

PURPOSES = ("fine-tune",)
CHUNK = 1 << 20
MAX_LIST = 10_000
REJECTS_SHOWN = 3


def create_file(session: Session, settings: Settings, stream: BinaryIO, *, filename: str, purpose: str) -> UploadedFile:
    """Store an upload as it streams in, then import it into a new dataset (validated like any import)."""
    if purpose not in PURPOSES:
        raise Invalid(
            f"'{purpose}' is not a supported purpose. Tuneboard accepts purpose='fine-tune'.", param="purpose"
        )
    filename = Path(filename or "").name or "upload.jsonl"
    row = UploadedFile(filename=filename, purpose=purpose, path="", status="uploaded")
    row.path = f"files/{row.id}"
    target = settings.storage_path("files", row.id)
    size = 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(CHUNK):
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        # A half-written upload (full disk, client gone) must not stay behind looking like a complete file.
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise Invalid(
            f"The file '{filename}' is empty: upload a JSONL file with one chat example per line.",
            code="invalid_file",
            param="file",
        )
    row.bytes = size
    session.add(row)
    session.commit()
    _import(session, row, target)
    return row


def _import(session: Session, row: UploadedFile, target: Path) -> None:
    # Imported after the bytes are safe on disk, so a refused or half-bad file is still there to download and fix.
    dataset = create_dataset(session, row.filename[:200], description=f"Uploaded through /v1/files as {row.id}.")
    dataset_id = dataset.id
    assert dataset_id is not None  # committed and refreshed: the database gave it its id
    row.dataset_id = dataset_id
    try:
        with target.open("rb") as stream:
            result = import_jsonl(session, dataset_id, stream, filename=row.filename)
    except DomainError as exc:
        session.rollback()  # may discard the unsaved link set above, so it is set again
        row.dataset_id = dataset_id
        row.status, row.status_details = "error", exc.message
    else:
        row.status = "processed" if result.imported else "error"
        row.status_details = import_summary(result.imported, result.rejected)
    session.add(row)
    session.commit()


def import_summary(imported: int, rejected: list[RejectedLine]) -> str | None:
    """A one-line account of an import: how many examples came in and the first rejected lines, with reasons."""
    if not rejected:
        return None if imported else "The file holds no examples."
    shown = "; ".join(f"line {r.line}: {r.message}" for r in rejected[:REJECTS_SHOWN])
    more = f" (and {len(rejected) - REJECTS_SHOWN} more)" if len(rejected) > REJECTS_SHOWN else ""
    return f"Imported {imported} examples; rejected {len(rejected)} lines: {shown}{more}."


def get_file(session: Session, file_id: str) -> UploadedFile:
    """A file that has not been deleted, or NotFound."""
    row = session.get(UploadedFile, file_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No such File object: {file_id}", code="file_not_found", param="id")
    return row


def list_files(
    session: Session,
    *,
    after: str | None = None,
    limit: int = MAX_LIST,
    order: str = "desc",
    purpose: str | None = None,
) -> tuple[list[UploadedFile], bool]:
    """Files newest first (or oldest first), those after the file `after`, and whether more follow."""
    if order not in ("asc", "desc"):
        raise Invalid("order must be 'asc' or 'desc'.", param="order")
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}.", param="limit")
    query = select(UploadedFile).where(col(UploadedFile.deleted_at).is_(None))
    if purpose:
        query = query.where(UploadedFile.purpose == purpose)
    created, ident = col(UploadedFile.created_at), col(UploadedFile.id)
    if after:
        anchor = session.get(UploadedFile, after)
        if anchor is None:
            raise NotFound(f"No such File object: {after}", code="file_not_found", param="after")
        # (created_at, id) is a total order, so files created in the same instant are neither skipped nor repeated.
        if order == "desc":
            query = query.where(or_(created < anchor.created_at, and_(created == anchor.created_at, ident < anchor.id)))
        else:
            query = query.where(or_(created > anchor.created_at, and_(created == anchor.created_at, ident > anchor.id)))
    ordering = (created.desc(), ident.desc()) if order == "desc" else (created.asc(), ident.asc())
    rows = list(session.exec(query.order_by(*ordering).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def file_content(session: Session, settings: Settings, file_id: str) -> tuple[Path, UploadedFile]:
    """The path of a file's bytes as uploaded (for a streamed download) and its row."""
    row = get_file(session, file_id)
    path = settings.data_dir / row.path
    if not path.is_file():
        raise NotFound(f"The content of {file_id} is no longer stored.", code="file_not_found", param="id")
    return path, row


def delete_file(session: Session, settings: Settings, file_id: str) -> UploadedFile:
    """Delete a file's bytes; the dataset it became stays in the dashboard, and jobs keep their snapshots."""
    row = get_file(session, file_id)
    require_maintenance(session, f"Deleting file {file_id}")
    row.deleted_at = utcnow()
    session.add(row)
    session.commit()
    path = settings.data_dir / row.path
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return row
