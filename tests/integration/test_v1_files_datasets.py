"""Datasets made by /v1/files uploads: none for a file without a usable line, marked as uploads, and deleted with
their file while nobody has touched them."""

from __future__ import annotations

import json

from sqlmodel import select

from app.datasets.datasets import touch_dataset, update_dataset
from app.openai_api.files import upload_note
from app.settings.store import MAINTENANCE, set_value
from app.tables import Dataset, UploadedFile

GOOD = json.dumps({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})


def upload(api, name: str, data: bytes) -> dict:
    response = api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": (name, data)})
    assert response.status_code == 200, response.text
    return response.json()


def datasets(session) -> list[Dataset]:
    session.expire_all()
    return list(session.exec(select(Dataset)).all())


def test_a_file_without_a_usable_line_makes_no_dataset(api, session):
    created = upload(api, "garbage.jsonl", b"this is not jsonl\n")
    assert created["status"] == "error" and "line 1" in created["status_details"]
    assert datasets(session) == []
    assert session.get(UploadedFile, created["id"]).dataset_id is None


def test_an_uploaded_files_dataset_is_marked_and_deleted_with_it_while_untouched(api, session):
    set_value(session, MAINTENANCE, True)
    created = upload(api, "a.jsonl", (GOOD + "\n").encode() * 3)
    [dataset] = datasets(session)
    assert dataset.description == upload_note(created["id"]) and created["id"] in dataset.description
    assert api.delete(f"/v1/files/{created['id']}").json()["deleted"] is True
    assert datasets(session) == []


def test_an_edited_dataset_stays_when_its_file_is_deleted(api, session):
    set_value(session, MAINTENANCE, True)
    created = upload(api, "b.jsonl", (GOOD + "\n").encode() * 2)
    [dataset] = datasets(session)
    touch_dataset(session, dataset.id)
    session.commit()
    assert api.delete(f"/v1/files/{created['id']}").json()["deleted"] is True
    assert [d.id for d in datasets(session)] == [dataset.id]


def test_a_renamed_dataset_stays_when_its_file_is_deleted(api, session):
    set_value(session, MAINTENANCE, True)
    created = upload(api, "c.jsonl", (GOOD + "\n").encode())
    [dataset] = datasets(session)
    update_dataset(session, dataset.id, name="kept")
    assert api.delete(f"/v1/files/{created['id']}").json()["deleted"] is True
    assert [d.name for d in datasets(session)] == ["kept"]


def test_the_dataset_list_filters_datasets_from_api_uploads(api, client, session):
    upload(api, "from-api.jsonl", (GOOD + "\n").encode())
    assert client.post("/datasets", data={"name": "made-here"}).status_code in (200, 303)
    uploads = client.get("/datasets?source=upload").text
    assert "from-api.jsonl" in uploads and "made-here" not in uploads
    here = client.get("/datasets?source=dashboard").text
    assert "made-here" in here and "from-api.jsonl" not in here
    assert "From API uploads" in client.get("/datasets").text
