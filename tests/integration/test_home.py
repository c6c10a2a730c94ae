"""The home page: counts, recent jobs, and the getting-started path with the bundled sample dataset."""

from __future__ import annotations

import json

from sqlmodel import select

from app.datasets.validation import check_record
from app.home.summary import SAMPLE_FILE
from app.tables import Dataset, Example, Job


def test_sample_dataset_has_at_least_twelve_valid_examples_in_one_voice():
    records = [json.loads(line) for line in SAMPLE_FILE.read_text().splitlines()]
    assert len(records) >= 12
    assert all(check_record(r).valid for r in records)
    replies = [r["messages"][-1]["content"] for r in records]
    assert all(reply.startswith("Arr,") and reply.endswith("matey! ⚓") for reply in replies)


def test_empty_install_shows_the_getting_started_path(client):
    html = client.get("/").text
    assert "Import the sample dataset" in html
    assert 'action="/sample-dataset"' in html and 'name="csrf_token"' in html
    assert "Fine-tune it locally" in html and "Chat with it" in html


def test_one_click_imports_the_sample_then_points_to_fine_tuning_it(client, session):
    response = client.post("/sample-dataset", follow_redirects=False)
    assert response.status_code == 303
    dataset = session.exec(select(Dataset)).one()
    assert response.headers["location"] == f"/datasets/{dataset.id}"
    examples = session.exec(select(Example).where(Example.dataset_id == dataset.id)).all()
    assert len(examples) == len(SAMPLE_FILE.read_text().splitlines())
    assert sum(e.split == "validation" for e in examples) == 3
    client.post("/sample-dataset")  # a second click does not duplicate it
    assert len(session.exec(select(Dataset)).all()) == 1
    html = client.get("/").text
    assert f"/jobs/new?dataset_id={dataset.id}" in html and "Import the sample dataset" not in html


def test_home_counts_and_lists_recent_jobs(client, session):
    session.add(Job(model="tiny-llama", status="running"))
    session.commit()
    html = client.get("/").text
    assert "1 running" in html and "Recent jobs" in html and "tiny-llama" in html
