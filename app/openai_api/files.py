"""Files uploaded through /v1/files: kept byte for byte on disk and imported into a dataset named after them.

A file's row says `uploaded` only while its import runs, and the process running it holds an exclusive lock on
the file's bytes all that time. A server killed meanwhile (kill -9, a crash, a power cut) loses the lock with
the process; on the next start `recover_interrupted_uploads` ends such files as `error` with a reason. The
dataset and its examples are written in the same transaction that ends the import, so none is left half-made.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from pathlib import Path
from typing import IO, BinaryIO

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from app.config import Settings
from app.datasets import importer
from app.datasets.datasets import delete_dataset, new_dataset
from app.datasets.limits import Limits
from app.datasets.rejections import Rejections
from app.errors import DomainError, Invalid, NotFound
from app.settings.maintenance import require_maintenance
from app.tables import Dataset, Example, Job, UploadedFile
from app.tables.common import stored_id, utcnow

log = logging.getLogger("tuneboard")

PURPOSES = ("fine-tune",)
CHUNK = 1 << 20
MAX_LIST = 10_000
REJECTS_SHOWN = 3
UPLOAD_NOTE = "Uploaded through /v1/files"
INTERRUPTED = (
    "The server stopped while this file was being imported (it was restarted or killed); nothing of it was "
    "imported. Upload the file again."
)


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
    with target.open("wb") as out:
        _hold(out)
        try:
            size = _store(stream, out, Limits.of(settings).upload_bytes)
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
        _import(session, settings, row, target)
    return row


def _hold(out: IO[bytes]) -> None:
    # Held until the import is written: while it is, a server starting on the same data dir knows it is alive.
    try:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)
    except OSError as exc:  # a file system without locks (some network shares): recovery then judges alone
        log.warning("cannot lock %s (%s): a restart would take its import for interrupted", out.name, exc)


def _store(stream: BinaryIO, out: IO[bytes], limit: int) -> int:
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise Invalid(
                f"The file is larger than {limit:,} bytes (setting max_upload_bytes).",
                code="file_too_large",
                param="file",
            )
        out.write(chunk)
    out.flush()
    return size


def _import(session: Session, settings: Settings, row: UploadedFile, target: Path) -> None:
    # Imported after the bytes are safe on disk, so a refused or half-bad file is still there to download and fix.
    try:
        with target.open("rb") as stream, importer.receiver("jsonl", row.filename, settings=settings) as receiving:
            while data := stream.read(CHUNK):
                receiving.feed(data)
            prepared = receiving.finish()
    except DomainError as exc:
        _end(session, row, exc.message)
        return
    except BaseException:
        _end(session, row, "The import failed on the server; upload the file again.")
        raise
    try:
        dataset = new_dataset(session, row.filename[:200], description=upload_note(row.id))
        dataset_id = stored_id(dataset)
        imported = importer.write_rows(session, dataset_id, prepared)
        if not imported:
            # Nothing usable: no empty dataset in the list, only the file with its reasons.
            session.rollback()
            row.status = "error"
        else:
            row.dataset_id = dataset_id
            row.status = "processed"
        row.status_details = import_summary(imported, prepared.rejections)
        session.add(row)
        session.commit()
    except BaseException:
        session.rollback()
        prepared.discard()
        _end(session, row, "The import failed on the server; upload the file again.")
        raise
    if imported:
        importer.close_import(session, dataset_id, prepared)
    else:
        prepared.close()


def _end(session: Session, row: UploadedFile, reason: str) -> None:
    """Mark a file `error` with a reason, as far as the database lets us (else a restart's recovery will)."""
    session.rollback()
    try:
        session.execute(
            update(UploadedFile)
            .where(col(UploadedFile.id) == row.id, col(UploadedFile.status) == "uploaded")
            .values(status="error", status_details=reason)
        )
        session.commit()
    except Exception:
        session.rollback()
        log.exception("could not mark file %s as failed", row.id)
    session.refresh(row)


def import_summary(imported: int, rejected: Rejections) -> str | None:
    """A one-line account of an import: how many examples came in and the first rejected lines, with reasons."""
    if not rejected.count:
        return None if imported else "The file holds no examples."
    shown = "; ".join(f"line {r.line}: {r.message}" for r in rejected.sample[:REJECTS_SHOWN])
    more = f" (and {rejected.count - REJECTS_SHOWN} more)" if rejected.count > REJECTS_SHOWN else ""
    return f"Imported {imported} examples; rejected {rejected.count} lines: {shown}{more}."


def recover_interrupted_uploads(settings: Settings, engine: Engine) -> int:
    """End as `error` the files whose import died with its process, removing their half-made datasets.

    A file still locked belongs to an import running in another live process (a second server on the same data
    directory) and is left alone. Returns how many files were recovered.
    """
    recovered = 0
    with Session(engine, expire_on_commit=False) as session:
        stuck = session.exec(
            select(UploadedFile).where(col(UploadedFile.status) == "uploaded", col(UploadedFile.deleted_at).is_(None))
        ).all()
        for row in stuck:
            alive, lock = _lock(settings.data_dir / row.path)
            if alive:
                continue
            dataset_id = row.dataset_id  # the UPDATE below clears it on the loaded row too
            try:
                # Re-checked under the lock: an import that just finished committed before letting go of it.
                ended = session.exec(
                    update(UploadedFile)
                    .where(col(UploadedFile.id) == row.id, col(UploadedFile.status) == "uploaded")
                    .values(status="error", status_details=INTERRUPTED, dataset_id=None)
                )
                if not ended.rowcount:
                    session.rollback()
                    continue
                session.commit()
                if (
                    dataset_id is not None
                    and not session.exec(
                        select(col(Example.id)).where(col(Example.dataset_id) == dataset_id).limit(1)
                    ).first()
                ):
                    # Made by an older version before its import began: empty, named after the file.
                    try:
                        delete_dataset(session, dataset_id)
                    except NotFound:
                        session.rollback()
                recovered += 1
                log.warning("file %s: its import was interrupted by a stop of the server; marked as error", row.id)
            finally:
                if lock is not None:
                    lock.close()
    return recovered


def _lock(path: Path) -> tuple[bool, IO[bytes] | None]:
    """(whether a live process holds the lock on a file's bytes, our locked handle on them if we took it)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return False, None  # no bytes: nobody can be importing them
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return True, None
    except OSError:  # no locks on this file system: nobody can hold one
        pass
    return False, handle


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


def upload_note(file_id: str) -> str:
    """The description an uploaded file's dataset starts with: it marks datasets that came from /v1/files."""
    return f"{UPLOAD_NOTE} as {file_id}."


def _untouched_dataset(session: Session, row: UploadedFile) -> Dataset | None:
    """The file's dataset if nobody changed it since the upload (one revision: the import) and no job used it."""
    dataset = session.get(Dataset, row.dataset_id) if row.dataset_id is not None else None
    if dataset is None or dataset.rev > 1:  # every example edit bumps rev; a rename or new description does not
        return None
    if dataset.name != row.filename[:200].strip() or dataset.description != upload_note(row.id):
        return None
    used = or_(col(Job.dataset_id) == dataset.id, col(Job.validation_dataset_id) == dataset.id)
    if session.exec(select(col(Job.id)).where(used).limit(1)).first() is not None:
        return None
    return dataset


def delete_file(session: Session, settings: Settings, file_id: str) -> UploadedFile:
    """Delete a file's bytes and its dataset when untouched since the upload; an edited or used dataset stays in
    the dashboard, and jobs keep their snapshots."""
    row = get_file(session, file_id)
    require_maintenance(session, f"Deleting file {file_id}")
    dataset = _untouched_dataset(session, row)
    row.deleted_at = utcnow()
    session.add(row)
    session.commit()
    if dataset is not None:
        delete_dataset(session, stored_id(dataset))
    path = settings.data_dir / row.path
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return row
