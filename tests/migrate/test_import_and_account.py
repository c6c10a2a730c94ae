"""The account view and importing a job's files as datasets, against the stand-in OpenAI server."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import select

from app.datasets.datasets import dataset_counts, update_dataset
from app.datasets.importer import rejected_reasons
from app.errors import Invalid
from app.migrate.account import account_view
from app.migrate.import_files import import_job_files
from app.providers.base import ProviderError
from app.tables import Dataset, Example, Job, TunedModel
from tests.migrate.conftest import provider_options
from tests.support.fake_openai_account import QUESTIONS, chat_record, jsonl, preload_account

TODAY = date(2026, 12, 3)


def test_the_account_view_lists_models_with_base_retirement_job_and_files(session, settings, fake):
    job = preload_account(fake.state)
    failed = preload_account(fake.state, suffix="broken", with_validation=False)
    failed.update(status="failed", fine_tuned_model=None)
    view = account_view(session, settings, today=TODAY, **provider_options(fake))
    assert view.connected and view.error is None
    assert view.cutoff == date(2027, 1, 6) and view.cutoff_days == 34
    [model] = view.models
    assert model.id == job["fine_tuned_model"] and model.base_model == "gpt-4o-mini-2024-07-18"
    assert model.retirement is not None and model.retirement.shutdown == date(2027, 1, 14)
    assert model.retirement.days_left == 42
    assert model.job is not None and model.job.id == job["id"]
    assert [(f.role, f.file_id, f.dataset) for f in model.files] == [
        ("training", job["training_file"], None),
        ("validation", job["validation_file"], None),
    ]
    assert model.to_import and not model.known
    [(other, files)] = view.other_jobs
    assert other.id == failed["id"] and other.status == "failed" and [f.role for f in files] == ["training"]


def test_without_a_key_the_view_says_connect_first_and_a_refused_key_is_said_plainly(session, settings, fake):
    view = account_view(session, settings, today=TODAY)
    assert not view.connected and view.models == [] and view.error is None
    refused = account_view(session, settings, today=TODAY, **provider_options(fake, api_key="sk-wrong"))
    assert refused.error and "rejected the API key" in refused.error


def test_a_jobs_files_are_imported_as_datasets_with_provenance_and_the_model_becomes_known(session, settings, fake):
    job = preload_account(fake.state)
    training, validation = import_job_files(session, settings, job["id"], **provider_options(fake))
    assert (training.role, validation.role) == ("training", "validation")
    assert not training.existed and training.result.imported == 12 and training.result.rejected_count == 0
    assert validation.result.imported == 3
    assert training.dataset.name == "support · training file (OpenAI)"
    today = date.today().isoformat()
    assert training.dataset.description == (
        f"Imported from OpenAI file {job['training_file']} (training file of job {job['id']}, "
        f"model {job['fine_tuned_model']}) on {today}."
    )
    assert validation.dataset.description.startswith(f"Imported from OpenAI file {job['validation_file']} (validation")
    examples = session.exec(select(Example).where(Example.dataset_id == training.dataset.id)).all()
    assert [e.messages for e in examples] == [chat_record(q)["messages"] for q in QUESTIONS[:12]]
    assert dataset_counts(session, training.dataset.id).invalid == 0
    assert session.get(TunedModel, job["fine_tuned_model"]).provider == "openai"
    assert session.exec(select(Job).where(Job.provider_job_id == job["id"])).one()
    view = account_view(session, settings, **provider_options(fake))
    assert [f.dataset.id for f in view.models[0].files] == [training.dataset.id, validation.dataset.id]
    assert view.models[0].known and not view.models[0].to_import


def test_importing_twice_returns_the_existing_datasets_without_downloading_again(session, settings, fake):
    job = preload_account(fake.state)
    first = import_job_files(session, settings, job["id"], **provider_options(fake))
    downloads = sum(r.endswith("/content") for r in fake.state.requests)
    again = import_job_files(session, settings, job["id"], **provider_options(fake))
    assert [i.dataset.id for i in again] == [i.dataset.id for i in first] and all(i.existed for i in again)
    assert sum(r.endswith("/content") for r in fake.state.requests) == downloads
    assert len(session.exec(select(Dataset)).all()) == 2
    # Once its description no longer says where it came from, the dataset is the user's own: a new import is made.
    update_dataset(session, first[0].dataset.id, description="mine now")
    third = import_job_files(session, settings, job["id"], **provider_options(fake))
    assert not third[0].existed and third[1].existed


def test_every_rejected_line_of_an_imported_file_is_reported_as_in_any_import(session, settings, fake):
    lines = [chat_record(q) for q in QUESTIONS[:11]]
    lines.insert(3, "{not json")
    lines.insert(7, json.dumps({"prompt": "legacy", "completion": "ok", "messages": 3}))
    job = preload_account(fake.state, training=jsonl(lines), with_validation=False)
    [training] = import_job_files(session, settings, job["id"], **provider_options(fake))
    result = training.result
    assert result.imported == 11 and result.rejected_count == 2
    assert [r.line for r in result.rejected] == [4, 8]
    text = b"".join(rejected_reasons(settings, training.dataset.id, result.import_id)).decode()
    listed = [json.loads(line) for line in text.splitlines()]
    assert [r["line"] for r in listed] == [4, 8] and all(r["message"] for r in listed)


def test_a_refused_download_leaves_no_dataset_behind(session, settings, fake, monkeypatch):
    job = preload_account(fake.state)
    small = settings.model_copy(update={"max_upload_bytes": 50})
    with pytest.raises(Invalid) as refused:
        import_job_files(session, small, job["id"], **provider_options(fake))
    assert refused.value.code == "file_too_large"
    assert session.exec(select(Dataset)).all() == []
    with pytest.raises(ProviderError) as missing:
        import_job_files(session, settings, "ftjob-nope", **provider_options(fake))
    assert missing.value.code == "not_found"
    with pytest.raises(Invalid):
        import_job_files(session, settings, " ", **provider_options(fake))
