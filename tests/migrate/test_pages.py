"""The "Move off OpenAI" page: steps, the account's models from the stand-in, importing files, the local job."""

from __future__ import annotations

import re

from sqlmodel import select

from app.settings.store import OPENAI_API_KEY, OPENAI_BASE_URL, get_value, set_secret, set_value
from app.tables import Dataset, Job
from app.tables.settings_store import load_secret_key
from tests.support.fake_openai import KEY
from tests.support.fake_openai_account import preload_account
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401


def connect(session, settings, fake) -> None:
    """Save the stand-in's key and address on the settings page, as a user would."""
    set_secret(session, OPENAI_API_KEY, KEY, load_secret_key(settings))
    set_value(session, OPENAI_BASE_URL, fake.url + "/v1")


def test_without_a_key_the_page_sends_to_the_settings_and_is_in_the_nav(client):
    html = client.get("/migrate").text
    assert 'href="/migrate" aria-current="page"' in html and "Move off OpenAI" in html
    assert "on the settings page</a> to list your fine-tuned models" in html
    assert "2027-01-06" in html and "2027-01-14" in html
    assert 'id="openai-models"' not in html


def test_the_page_lists_the_accounts_fine_tuned_models_with_retirement_job_and_files(client, session, settings, fake):
    job = preload_account(fake.state)
    connect(session, settings, fake)
    html = client.get("/migrate").text
    table = html[html.index('id="openai-models"') :]
    assert job["fine_tuned_model"] in table and "gpt-4o-mini-2024-07-18" in table and "2027-01-14" in table
    assert re.search(r"\d+ days? left|retired", table)
    assert job["id"] in table and job["training_file"] in table and job["validation_file"] in table
    assert f'name="job_id" value="{job["id"]}"' in table and "Import files" in table


def test_a_refused_key_is_said_on_the_page(client, session, settings, fake):
    connect(session, settings, fake)
    set_secret(session, OPENAI_API_KEY, "sk-wrong", load_secret_key(settings))
    page = client.get("/migrate")
    assert page.status_code == 200 and "OpenAI rejected the API key" in page.text


def test_import_files_shows_both_datasets_and_then_the_table_links_them(client, session, settings, fake):
    job = preload_account(fake.state)
    connect(session, settings, fake)
    answer = client.post("/migrate/import", data={"job_id": job["id"]}, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and "<html" not in answer.text
    assert "Imported 12 examples" in answer.text and "Imported 3 examples" in answer.text
    assert "No line was rejected." in answer.text and job["training_file"] in answer.text
    again = client.post("/migrate/import", data={"job_id": job["id"]})
    assert again.status_code == 200 and again.text.count("Imported before") == 2
    datasets = session.exec(select(Dataset).order_by(Dataset.id)).all()
    assert len(datasets) == 2
    html = client.get("/migrate").text
    assert f'href="/datasets/{datasets[0].id}"' in html and "files imported" in html
    assert f'<option value="{datasets[0].id}" selected>' in html  # step 4 is prefilled with the training data
    assert f'<option value="{datasets[1].id}" selected>' in html
    assert get_value(session, OPENAI_BASE_URL) == fake.url + "/v1"


def test_a_missing_job_is_a_plain_error(client, session, settings, fake):
    connect(session, settings, fake)
    answer = client.post("/migrate/import", data={"job_id": "ftjob-nope"})
    assert answer.status_code == 502 and "OpenAI does not know it" in answer.text


def test_the_local_replacement_job_is_queued_on_the_imported_data(client, session, settings, fake):
    job = preload_account(fake.state)
    connect(session, settings, fake)
    client.post("/migrate/import", data={"job_id": job["id"]})
    training, validation = session.exec(select(Dataset).order_by(Dataset.id)).all()
    answer = client.post(
        "/migrate/train",
        data={"dataset_id": training.id, "validation_dataset_id": validation.id, "model": TINY, "suffix": "support"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    queued = session.exec(select(Job).where(Job.provider == "local")).one()
    assert answer.headers["location"] == f"/jobs/{queued.id}"
    assert queued.model == TINY and queued.dataset_id == training.id and queued.suffix == "support"
    assert queued.validation_snapshot_id is not None
    refused = client.post("/migrate/train", data={"dataset_id": training.id, "model": "gpt-4o"})
    assert refused.status_code == 400 and "not a local base model" in refused.text
