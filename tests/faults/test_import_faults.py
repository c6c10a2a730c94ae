"""A crash, a full disk or a locked database during a write: a clear message, nothing half-written."""

from __future__ import annotations

import errno
import io
import json
import pathlib
import sqlite3

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.datasets import import_stream, importer
from app.main import create_app
from app.tables import Dataset, Example, UploadedFile
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, make_settings

pytestmark = pytest.mark.slow

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})


class ExplodingStream(io.RawIOBase):
    """A binary upload that yields `good_lines` lines, then raises `error` (a dropped connection, a full disk)."""

    def __init__(self, good_lines: int, error: BaseException):
        self.data = io.BytesIO(("\n".join([GOOD] * good_lines) + "\n").encode())
        self.error = error

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> bytes:
        line = self.data.readline(size)
        if not line:
            raise self.error
        return line

    def readinto(self, buffer) -> int:
        chunk = self.data.read(len(buffer))
        if not chunk:
            raise self.error
        buffer[: len(chunk)] = chunk
        return len(chunk)


def count_examples(engine, dataset_id: int) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(Example).where(Example.dataset_id == dataset_id)).scalar()


def make_dataset(engine, name: str = "faults") -> int:
    with Session(engine) as s:
        dataset = Dataset(name=name)
        s.add(dataset)
        s.commit()
        return dataset.id


def test_a_crash_midway_through_an_import_leaves_no_partial_dataset(session, engine):
    dataset_id = make_dataset(engine)
    importer.import_jsonl(session, dataset_id, io.BytesIO((GOOD + "\n").encode() * 3))
    # 2,500 lines: more than two executemany batches have been written when the stream dies.
    with pytest.raises(ConnectionResetError):
        importer.import_jsonl(session, dataset_id, ExplodingStream(2500, ConnectionResetError("client went away")))
    assert count_examples(engine, dataset_id) == 3
    again = importer.import_jsonl(session, dataset_id, io.BytesIO((GOOD + "\n").encode() * 2))
    assert again.imported == 2 and count_examples(engine, dataset_id) == 5


def test_a_crash_midway_through_an_import_into_a_new_dataset_leaves_it_empty(session, engine):
    dataset_id = make_dataset(engine, "fresh")
    with pytest.raises(RuntimeError):
        importer.import_jsonl(session, dataset_id, ExplodingStream(1500, RuntimeError("worker crashed")))
    assert count_examples(engine, dataset_id) == 0


def test_a_full_disk_while_reading_an_import_loses_nothing_already_there(session, engine):
    dataset_id = make_dataset(engine)
    importer.import_jsonl(session, dataset_id, io.BytesIO((GOOD + "\n").encode() * 4))
    with pytest.raises(OSError):
        importer.import_jsonl(session, dataset_id, ExplodingStream(1200, OSError(errno.ENOSPC, "No space left")))
    assert count_examples(engine, dataset_id) == 4


@pytest.fixture
def api_client(app):
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}, raise_server_exceptions=False) as c:
        yield c


class FullDiskFile(io.FileIO):
    """A real file on a disk that fills up: the first write lands half, then ENOSPC."""

    def write(self, data) -> int:
        if self.tell() == 0 and len(data) > 1:
            super().write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")


def fill_disk_under(monkeypatch, folder: str) -> None:
    """Make every file opened for writing under data_dir/<folder> run out of space."""
    real_open = pathlib.Path.open

    def open_(self, mode="r", *args, **kwargs):
        if "w" in mode and folder in self.parts:
            return FullDiskFile(str(self), "w")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_)


def test_a_full_disk_during_a_file_upload_gives_a_clear_message_and_no_file_row(
    api_client, engine, settings, monkeypatch
):
    fill_disk_under(monkeypatch, "files")
    response = api_client.post(
        "/v1/files",
        data={"purpose": "fine-tune"},
        files={"file": ("train.jsonl", (GOOD + "\n").encode() * 20, "application/jsonl")},
    )
    monkeypatch.undo()
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(UploadedFile)).scalar() == 0
        assert s.execute(select(func.count()).select_from(Dataset)).scalar() == 0
    assert response.status_code in (500, 503, 507)
    assert "space" in response.text.lower()
    # The half-written upload is not left behind to be mistaken for a complete file.
    assert not any(p.stat().st_size for p in (settings.data_dir / "files").glob("*"))


def test_a_full_disk_during_an_import_gives_a_clear_message_and_imports_nothing(api_client, engine, monkeypatch):
    dataset_id = make_dataset(engine)
    real_add = import_stream.RowSpool.add

    def add(spool, rows):  # the disk fills up once a first batch of checked rows has been spooled
        if spool.count:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(spool, rows)

    monkeypatch.setattr(import_stream.RowSpool, "add", add)
    data = (GOOD + "\n").encode() * 2500
    response = api_client.post(
        f"/api/datasets/{dataset_id}/import", files={"file": ("a.jsonl", data, "application/jsonl")}
    )
    assert count_examples(engine, dataset_id) == 0
    assert response.status_code in (500, 503, 507)
    assert "space" in response.text.lower()


@pytest.fixture
def locked_app(tmp_path):
    """An app whose SQLite connections give up after 200 ms of waiting for a write lock (instead of 30 s)."""
    settings = make_settings(tmp_path / "data", sqlite_busy_timeout_ms=200)
    upgrade(settings)
    return settings, create_app(settings)


class WriteLock:
    """Another process's long write transaction: a raw sqlite3 connection holding the write lock."""

    def __init__(self, db_path: str):
        self.conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _db_path(settings) -> str:
    return str(settings.data_dir / "tuneboard.db")


def test_a_locked_database_gives_a_clear_message_and_the_write_can_be_retried(locked_app):
    settings, application = locked_app
    with TestClient(
        application, headers={"Authorization": f"Bearer {API_KEY}"}, raise_server_exceptions=False
    ) as client:
        with WriteLock(_db_path(settings)):
            refused = client.post("/api/datasets", json={"name": "while locked"})
        names = [d["name"] for d in client.get("/api/datasets").json()]
        assert "while locked" not in names
        assert client.post("/api/datasets", json={"name": "after the lock"}).status_code == 201
        assert refused.status_code == 503
        assert "busy" in refused.text.lower() or "locked" in refused.text.lower()


def test_a_locked_database_during_an_import_leaves_the_dataset_as_it_was(locked_app):
    settings, application = locked_app
    engine = application.state.engine
    dataset_id = make_dataset(engine)
    body = ((GOOD + "\n") * 50).encode()
    with TestClient(
        application, headers={"Authorization": f"Bearer {API_KEY}"}, raise_server_exceptions=False
    ) as client:
        assert client.post(f"/api/datasets/{dataset_id}/import", files={"file": ("a.jsonl", body)}).status_code == 200
        with WriteLock(_db_path(settings)):
            refused = client.post(f"/api/datasets/{dataset_id}/import", files={"file": ("b.jsonl", body)})
        assert refused.status_code >= 400
        assert count_examples(engine, dataset_id) == 50
        # The database is intact: integrity check passes and the next import works.
        with sqlite3.connect(_db_path(settings)) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert (
            client.post(f"/api/datasets/{dataset_id}/import", files={"file": ("c.jsonl", body)}).json()["imported"]
            == 50
        )
    assert count_examples(engine, dataset_id) == 100


def test_readers_keep_working_while_another_process_holds_the_write_lock(locked_app):
    settings, application = locked_app
    make_dataset(application.state.engine, "visible")
    with TestClient(application, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        with WriteLock(_db_path(settings)):
            # WAL: pages and the API keep reading while a worker writes.
            assert [d["name"] for d in client.get("/api/datasets").json()] == ["visible"]
