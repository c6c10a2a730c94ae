"""The "Move off OpenAI" page: steps, the account's models from the stand-in, importing files, the local job."""

from __future__ import annotations

import re

from sqlmodel import select

from app.migrate.agreement import start_agreement
from app.settings.store import OPENAI_API_KEY, OPENAI_BASE_URL, get_value, set_secret
from app.tables import Dataset, EvalRun, EvalRunItem, EvalRunStatus, Job
from app.tables.settings_store import load_secret_key
from tests.migrate.conftest import connect
from tests.support.builders import make_dataset
from tests.support.fake_openai_account import preload_account
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401


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


def test_capture_and_compare_forms_queue_runs_and_the_report_page_answers(client, session, settings):
    source = make_dataset(session, n_train=3, name="prompts")
    html = client.get("/migrate").text
    assert 'action="/migrate/capture"' in html and 'action="/migrate/compare"' in html
    answer = client.post("/migrate/capture", data={"model": TINY, "dataset_id": source.id}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/migrate#step-capture"
    [run] = session.exec(select(EvalRun).where(EvalRun.purpose == "capture")).all()
    captures = client.get("/migrate/captures", headers={"HX-Request": "true"}).text
    assert f'data-run="{run.id}"' in captures and "0 of 3" in captures and 'hx-trigger="every 2s"' in captures
    answer = client.post("/migrate/compare", data={"model": TINY, "dataset_id": source.id}, follow_redirects=False)
    assert answer.status_code == 303
    compared = session.exec(select(EvalRun).where(EvalRun.purpose == "eval")).one()
    assert answer.headers["location"] == f"/migrate/agreement/{compared.id}"
    report = client.get(f"/migrate/agreement/{compared.id}")
    assert report.status_code == 200 and "Exact match" in report.text and "no judge chosen" in report.text
    assert f'hx-get="/migrate/agreement/{compared.id}"' in report.text
    assert f'href="/migrate/agreement/{compared.id}"' in client.get("/migrate").text
    assert client.get("/migrate/agreement/evalrun_nope").status_code == 404
    refused = client.post("/migrate/capture", data={"model": TINY, "dataset_id": ""})
    assert refused.status_code == 400 and "Choose a dataset." in refused.text


def test_the_report_page_shows_rates_intervals_and_the_differing_items(client, session, settings):
    golden = make_dataset(session, n_train=2, name="golden <set>")
    run = start_agreement(session, settings, golden.id, TINY, judge_model=TINY)
    for index, (output, passed, score) in enumerate([("0", True, 1.0), ("<b>3</b>", False, 0.25)]):
        results = [
            {"name": "exact match", "type": "string_check", "score": float(passed), "passed": passed, "error": None},
            {"name": "similarity", "type": "text_similarity", "score": score, "passed": score >= 0.8, "error": None},
            {"name": "judge", "type": "score_model", "score": 5 if passed else 1, "passed": passed, "error": None},
        ]
        item = {
            "messages": [{"role": "user", "content": f"What is {index} plus {index}?"}],
            "reference": str(2 * index),
        }
        sample = {"output": [{"role": "assistant", "content": output}]}
        session.add(
            EvalRunItem(run_id=run.id, item_index=index, item=item, sample=sample, results=results, status="pass")
        )
    run.status, run.n_done = EvalRunStatus.completed, 2
    session.add(run)
    session.commit()
    html = client.get(f"/migrate/agreement/{run.id}").text
    assert 'hx-trigger="every 2s"' not in html  # ended: no more refreshing
    assert "<strong>50%</strong> of 2" in html and "95% interval" in html and "golden &lt;set&gt;" in html
    assert "<strong>0.62</strong> over 2" in html
    assert "differs from the golden one on 1 item" in html
    assert "What is 1 plus 1?" in html and "&lt;b&gt;3&lt;/b&gt;" in html and "<b>3</b>" not in html
