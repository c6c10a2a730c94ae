"""On start, /v1 files whose import died with its server end as `error`, and their half-made datasets go.

A file whose import still runs in another live process (it holds the lock on the file's bytes) is left alone.
The kill -9 itself, with a real server, is tests/faults/test_upload_limits.py.
"""

from __future__ import annotations

import fcntl

from sqlmodel import select

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example
from app.openai_api.files import INTERRUPTED, recover_interrupted_uploads
from app.tables import Dataset, UploadedFile

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def stuck_file(session, settings, *, with_dataset: bool, with_bytes: bool = True) -> UploadedFile:
    """A file as an older version left it when killed mid-import: `uploaded`, with an empty dataset."""
    row = UploadedFile(filename="train.jsonl", path="", status="uploaded", bytes=10)
    row.path = f"files/{row.id}"
    if with_bytes:
        settings.storage_path("files", row.id).write_bytes(b"{}\n" * 3)
    if with_dataset:
        row.dataset_id = create_dataset(session, "train.jsonl").id
    session.add(row)
    session.commit()
    return row


def test_an_interrupted_upload_ends_as_error_and_its_empty_dataset_is_removed(session, settings, engine):
    row = stuck_file(session, settings, with_dataset=True)
    no_bytes = stuck_file(session, settings, with_dataset=False, with_bytes=False)
    done = UploadedFile(filename="ok.jsonl", path="files/x", status="processed")
    session.add(done)
    session.commit()
    assert recover_interrupted_uploads(settings, engine) == 2
    session.expire_all()
    for stuck in (row, no_bytes):
        recovered = session.get(UploadedFile, stuck.id)
        assert (recovered.status, recovered.status_details, recovered.dataset_id) == ("error", INTERRUPTED, None)
    assert session.exec(select(Dataset)).all() == []
    assert session.get(UploadedFile, done.id).status == "processed"
    assert recover_interrupted_uploads(settings, engine) == 0


def test_a_dataset_someone_filled_since_is_kept(session, settings, engine):
    row = stuck_file(session, settings, with_dataset=True)
    dataset_id = row.dataset_id
    add_example(session, dataset_id, CHAT)
    assert recover_interrupted_uploads(settings, engine) == 1
    session.expire_all()
    assert session.get(UploadedFile, row.id).status == "error"
    assert [d.id for d in session.exec(select(Dataset)).all()] == [dataset_id]


def test_an_import_still_running_in_another_process_is_left_alone(session, settings, engine):
    row = stuck_file(session, settings, with_dataset=False)
    with (settings.data_dir / row.path).open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # what the importing process holds until it commits
        assert recover_interrupted_uploads(settings, engine) == 0
        session.expire_all()
        assert session.get(UploadedFile, row.id).status == "uploaded"
    assert recover_interrupted_uploads(settings, engine) == 1


def test_the_app_recovers_interrupted_uploads_when_it_starts(session, settings, app):
    from fastapi.testclient import TestClient

    row = stuck_file(session, settings, with_dataset=True)
    with TestClient(app, headers={"Authorization": "Bearer tb-test-key-0123456789"}) as api:
        listed = api.get(f"/v1/files/{row.id}").json()
    assert listed["status"] == "error" and "server stopped" in listed["status_details"]
