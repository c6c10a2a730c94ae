"""Each imported example keeps the file and line it came from, through every import path, and the editor and the
dataset page show it (file line 4 is "Example 3" when a line before it was rejected)."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from app.datasets.datasets import create_dataset
from app.datasets.examples import duplicate_example
from app.datasets.importer import import_csv, import_jsonl
from app.tables import Dataset, UploadedFile
from app.tables.dataset import Example

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
ROBOT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "Beep."}]}
# Line 2 is rejected (not JSON), line 3 blank, line 4 parses but is invalid (no assistant message, role robot).
LINES = [json.dumps(GOOD).encode(), b"{not json", b"", json.dumps(ROBOT).encode(), json.dumps(GOOD).encode()]
FILE = b"\n".join(LINES)
FIRST = LINES[0]


def sources(session, dataset_id: int) -> list[tuple[int, str | None, int | None]]:
    session.expire_all()
    query = select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position)
    return [(e.position + 1, e.source_file, e.source_line) for e in session.scalars(query)]


@pytest.fixture
def dataset(session):
    return create_dataset(session, "sources")


def test_each_example_keeps_its_file_and_line_past_rejected_and_blank_lines(session, dataset):
    result = import_jsonl(session, dataset.id, io.BytesIO(FILE), filename="data.jsonl")
    assert result.imported == 3 and result.invalid == [(4, "unrecognized_role", result.invalid[0][2])]
    assert sources(session, dataset.id) == [(1, "data.jsonl", 1), (2, "data.jsonl", 4), (3, "data.jsonl", 5)]


def test_a_csv_row_keeps_the_line_it_starts_on(session, dataset):
    data = b'system,user,assistant\n,"two\nlines",a\n,b,c\n'
    import_csv(session, dataset.id, io.BytesIO(data), filename="chat.csv")
    assert sources(session, dataset.id) == [(1, "chat.csv", 2), (2, "chat.csv", 4)]


def test_a_path_in_the_file_name_is_dropped_and_an_unnamed_file_keeps_only_lines(session, dataset):
    import_jsonl(session, dataset.id, io.BytesIO(FIRST), filename="C:\\Users\\me\\data.jsonl")
    other = create_dataset(session, "unnamed")
    import_jsonl(session, other.id, io.BytesIO(FIRST))
    assert sources(session, dataset.id) == [(1, "data.jsonl", 1)]
    assert sources(session, other.id) == [(1, None, 1)]
    example = session.scalars(select(Example).where(Example.dataset_id == other.id)).one()
    assert example.source == "line 1"


def test_a_duplicated_example_keeps_its_source(session, dataset):
    import_jsonl(session, dataset.id, io.BytesIO(FILE), filename="data.jsonl")
    first = session.scalars(select(Example).where(Example.dataset_id == dataset.id, Example.position == 1)).one()
    copy = duplicate_example(session, first.id)
    assert copy.source == "line 4 of data.jsonl"


def test_the_api_and_the_dashboard_imports_keep_the_uploaded_files_name(api, client, session, dataset):
    response = api.post(f"/api/datasets/{dataset.id}/import", files={"file": ("api.jsonl", FILE)})
    assert response.status_code == 200, response.text
    other = create_dataset(session, "dashboard")
    response = client.post(f"/datasets/{other.id}/import", files={"file": ("page.jsonl", FILE)})
    assert response.status_code == 200, response.text
    assert [s[1:] for s in sources(session, dataset.id)] == [("api.jsonl", 1), ("api.jsonl", 4), ("api.jsonl", 5)]
    assert [s[1:] for s in sources(session, other.id)] == [("page.jsonl", 1), ("page.jsonl", 4), ("page.jsonl", 5)]


def test_a_v1_files_upload_keeps_the_uploaded_files_name(api, session):
    response = api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("train.jsonl", FILE)})
    assert response.status_code == 200, response.text
    uploaded = session.get(UploadedFile, response.json()["id"])
    assert uploaded is not None and uploaded.dataset_id is not None
    assert session.get(Dataset, uploaded.dataset_id) is not None
    assert [s[1:] for s in sources(session, uploaded.dataset_id)] == [
        ("train.jsonl", 1),
        ("train.jsonl", 4),
        ("train.jsonl", 5),
    ]


def test_the_editor_and_the_dataset_page_show_the_line(client, session, dataset):
    import_jsonl(session, dataset.id, io.BytesIO(FILE), filename="data.jsonl")
    robot = session.scalars(select(Example).where(Example.dataset_id == dataset.id, Example.position == 1)).one()
    editor = client.get(f"/examples/{robot.id}").text
    assert "Example 2" in editor and "Imported from line 4 of data.jsonl" in editor
    page = client.get(f"/datasets/{dataset.id}").text
    assert 'title="line 4 of data.jsonl">line 4</div>' in page
