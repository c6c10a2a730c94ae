"""Reading an OpenAI account through the provider: the real SDK over HTTP against the stand-in on 127.0.0.1."""

from __future__ import annotations

import pytest

from app.errors import Invalid
from app.providers.base import ProviderError
from app.providers.openai import OpenAIProvider
from app.providers.openai_account import base_of, download_file, list_fine_tuned_models, retrieve_file
from tests.migrate.conftest import provider_options
from tests.support.fake_openai_account import preload_account


def provider(settings, fake, **extra) -> OpenAIProvider:
    return OpenAIProvider(settings, **provider_options(fake, **extra))


def test_the_accounts_fine_tuned_models_come_with_their_job_base_and_files(settings, fake):
    older = preload_account(fake.state, model="gpt-4.1-mini-2025-04-14", suffix="old", with_validation=False)
    job = preload_account(fake.state)
    with provider(settings, fake) as p:
        models, jobs = list_fine_tuned_models(p)
    assert {m.id for m in models} == {job["fine_tuned_model"], older["fine_tuned_model"]}
    first = next(m for m in models if m.id == job["fine_tuned_model"])
    assert first.base_model == "gpt-4o-mini-2024-07-18" and first.owned_by == "org-fake"
    assert first.job is not None and first.job.id == job["id"] and first.job.status == "succeeded"
    assert first.job.training_file == job["training_file"] and first.job.validation_file == job["validation_file"]
    assert first.job.hyperparameters["n_epochs"] == 3 and first.job.suffix == "support"
    second = next(m for m in models if m.id == older["fine_tuned_model"])
    assert second.job is not None and second.job.validation_file is None
    assert {j.id for j in jobs} == {job["id"], older["id"]}
    assert "GET /v1/models" in fake.state.requests


def test_a_fine_tuned_model_without_a_job_of_the_account_is_listed_with_the_base_its_id_names(settings, fake):
    job = preload_account(fake.state, model="gpt-4o-2024-08-06")
    job["_other_project"] = True  # the job list does not name it; the model list does
    with provider(settings, fake) as p:
        models, jobs = list_fine_tuned_models(p)
    assert models[0].id == job["fine_tuned_model"] and models[0].job is None and jobs == []
    assert models[0].base_model == "gpt-4o-2024-08-06"


def test_base_of_reads_the_base_model_from_a_fine_tuned_id():
    assert base_of("ft:gpt-4o-mini-2024-07-18:org:suffix:AbC123") == "gpt-4o-mini-2024-07-18"
    assert base_of("ft:gpt-4.1-2025-04-14:org::xyz") == "gpt-4.1-2025-04-14"
    assert base_of("gpt-4o") == "gpt-4o"


def test_a_file_is_downloaded_whole_and_its_object_read(settings, fake, tmp_path):
    job = preload_account(fake.state)
    target = tmp_path / "train.jsonl"
    with provider(settings, fake) as p:
        info = download_file(p, job["training_file"], target, max_bytes=1 << 20)
        assert retrieve_file(p, job["validation_file"]).filename == "support_validation.jsonl"
    assert target.read_bytes() == fake.state.contents[job["training_file"]]
    assert (
        info.bytes == target.stat().st_size and info.purpose == "fine-tune" and info.filename == "support_train.jsonl"
    )
    assert not list(tmp_path.glob("*.part"))


def test_a_file_larger_than_the_upload_limit_is_refused_before_and_while_downloading(settings, fake, tmp_path):
    job = preload_account(fake.state)
    size = len(fake.state.contents[job["training_file"]])
    target = tmp_path / "train.jsonl"
    with provider(settings, fake) as p:
        with pytest.raises(Invalid, match="more than the 100 bytes") as stated:
            download_file(p, job["training_file"], target, max_bytes=100)
        assert stated.value.code == "file_too_large"
        fake.state.files[job["training_file"]]["bytes"] = 10  # OpenAI's stated size is wrong: counting catches it
        with pytest.raises(Invalid, match="more than"):
            download_file(p, job["training_file"], target, max_bytes=size - 1)
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_a_missing_file_and_a_refused_key_are_said_in_plain_words(settings, fake, tmp_path):
    with provider(settings, fake) as p:
        with pytest.raises(ProviderError) as missing:
            download_file(p, "file-nope", tmp_path / "x.jsonl", max_bytes=1000)
    assert missing.value.code == "not_found" and "file-nope" in missing.value.message
    with provider(settings, fake, api_key="sk-wrong") as p:
        with pytest.raises(ProviderError) as refused:
            list_fine_tuned_models(p)
    assert refused.value.code == "invalid_api_key" and "sk-wrong" not in refused.value.message


def test_server_errors_are_retried_by_the_sdk_and_then_said_plainly(settings, fake):
    preload_account(fake.state)
    fake.state.fail_times(500, 2)
    fake.state.fail_times(429, 2)
    with provider(settings, fake, max_retries=4) as p:
        models, _ = list_fine_tuned_models(p)
    assert len(models) == 1
    fake.state.fail_times(500, 3)
    with provider(settings, fake, max_retries=1) as p:
        with pytest.raises(ProviderError) as down:
            list_fine_tuned_models(p)
    assert down.value.code == "provider_unavailable" and down.value.retryable


def test_a_fine_tuned_model_of_the_account_answers_from_its_training(settings, fake):
    job = preload_account(fake.state)
    with provider(settings, fake) as p:
        chunks = list(p.stream_chat(job["fine_tuned_model"], [{"role": "user", "content": "Who wrote Hamlet?"}], None))
    assert "".join(c.text for c in chunks) == "Arr, who wrote hamlet!"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage["completion_tokens"] > 0
