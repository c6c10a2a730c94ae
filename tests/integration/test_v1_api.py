"""The /v1 API answers the real openai SDK, on a real uvicorn server, the way OpenAI's own API does."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from sqlmodel import Session, select

from app.main import create_app
from app.tables import Dataset, Example
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings


def example(i: int, system: str = "You answer with the number only.") -> dict:
    """One valid chat fine-tuning example."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is {i} plus one?"},
            {"role": "assistant", "content": str(i + 1)},
        ]
    }


def jsonl(records: list) -> bytes:
    """Records (dicts, or raw strings for bad lines) as JSONL bytes."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def upload(client: OpenAI, name: str, data: bytes):
    """files.create with an in-memory file named `name`."""
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    # No worker here: jobs stay queued, so listing, paging and cancelling see stable states. Maintenance on: these
    # tests cancel jobs and delete files (tests/integration/test_maintenance.py covers the switch off).
    settings = make_settings(
        tmp_path_factory.mktemp("v1") / "data", local_models={"tiny-llama": tiny_model}, maintenance=True
    )
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        live.settings = settings
        yield live


@pytest.fixture
def client(server):
    with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as c:
        yield c


def test_uploaded_file_becomes_a_dataset_and_downloads_byte_for_byte(server, client):
    data = jsonl([example(i) for i in range(12)])
    created = upload(client, "arithmetic.jsonl", data)
    assert created.id.startswith("file-") and created.object == "file"
    assert (created.filename, created.purpose, created.bytes, created.status) == (
        "arithmetic.jsonl",
        "fine-tune",
        len(data),
        "processed",
    )
    assert client.files.retrieve(created.id).id == created.id
    assert client.files.content(created.id).content == data
    assert created.id in [f.id for f in client.files.list()]
    engine = make_engine(server.settings)
    with Session(engine) as session:
        dataset = session.exec(select(Dataset).where(Dataset.name == "arithmetic.jsonl")).one()
        assert len(session.exec(select(Example).where(Example.dataset_id == dataset.id)).all()) == 12
    engine.dispose()


def test_deleted_file_is_gone_from_the_api(client):
    created = upload(client, "to-delete.jsonl", jsonl([example(1)]))
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    assert created.id not in [f.id for f in client.files.list()]


def test_file_with_bad_lines_reports_them_by_line_number(client):
    created = upload(client, "mixed.jsonl", jsonl([example(1), "{not json", example(2)]))
    assert created.status == "processed"
    assert "line 2" in created.status_details and "rejected 1" in created.status_details


def test_file_without_a_single_usable_line_is_marked_as_error_but_kept(client):
    data = b"this is not jsonl\n"
    created = upload(client, "garbage.jsonl", data)
    assert created.status == "error" and "line 1" in created.status_details
    assert client.files.content(created.id).content == data


def test_unsupported_purpose_and_empty_file_are_refused_with_openai_errors(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("a.jsonl", io.BytesIO(jsonl([example(1)]))), purpose="assistants")
    assert info.value.body["param"] == "purpose"
    with pytest.raises(openai.BadRequestError) as info:
        upload(client, "empty.jsonl", b"")
    assert "empty" in info.value.body["message"]


def test_file_list_auto_pagination_visits_every_file_once_and_stops(client):
    ids = {upload(client, f"page-{i}.jsonl", jsonl([example(i)])).id for i in range(5)}
    first = client.files.list(limit=2)
    assert len(first.data) == 2 and first.has_more is True
    seen = [f.id for f in client.files.list(limit=2)]
    assert len(seen) == len(set(seen)) and ids <= set(seen)


def test_wrong_key_raises_authentication_error(server):
    with OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            bad.models.list()
    assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"


def test_missing_job_model_and_file_raise_not_found(client):
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-doesnotexist")


def test_error_body_has_openai_shape(server):
    response = httpx.get(server.url + "/v1/fine_tuning/jobs/ftjob-nope", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_models_list_has_the_base_models(client):
    ids = [m.id for m in client.models.list()]
    assert "SmolLM2-135M-Instruct" in ids and "tiny-llama" in ids
    model = client.models.retrieve("tiny-llama")
    assert (model.id, model.object) == ("tiny-llama", "model")


def test_jobs_list_pages_on_after_and_a_queued_job_can_be_cancelled(client):
    training = upload(client, "jobs.jsonl", jsonl([example(i) for i in range(10)]))
    created = [
        client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=training.id, suffix=f"p{i}", metadata={"batch": "paging"}
        )
        for i in range(3)
    ]
    assert all(job.object == "fine_tuning.job" and job.training_file == training.id for job in created)
    first = client.fine_tuning.jobs.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    seen = [job.id for job in client.fine_tuning.jobs.list(limit=2)]
    assert len(seen) == len(set(seen)) and {job.id for job in created} <= set(seen)
    filtered = client.fine_tuning.jobs.list(metadata={"batch": "paging"})
    assert {job.id for job in filtered} == {job.id for job in created}
    cancelled = client.fine_tuning.jobs.cancel(created[0].id)
    assert cancelled.status == "cancelled"
    assert client.fine_tuning.jobs.retrieve(created[0].id).status == "cancelled"


def test_job_on_an_unknown_file_is_refused_naming_the_parameter(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.fine_tuning.jobs.create(model="tiny-llama", training_file="file-missing")
    assert info.value.body["param"] == "training_file"


def test_pause_is_refused_with_an_openai_error(client):
    training = upload(client, "pause.jsonl", jsonl([example(i) for i in range(10)]))
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=training.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.pause(job.id)
    assert info.value.body["code"] == "unsupported"
    client.fine_tuning.jobs.cancel(job.id)


def test_cancelling_an_ended_job_is_a_bad_request_like_openai(client):
    training = upload(client, "ended.jsonl", jsonl([example(i) for i in range(10)]))
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=training.id)
    client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.cancel(job.id)
    assert info.value.body["code"] == "job_not_cancellable"
    assert "cannot be cancelled" in info.value.body["message"]


def test_chat_completion_from_a_base_model_reports_usage(client):
    completion = client.chat.completions.create(
        model="tiny-llama",
        max_tokens=5,
        seed=1,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    )
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "tiny-llama" and len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 5 and completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streamed_chat_sends_chunks_then_usage_then_done(client):
    stream = client.chat.completions.create(
        model="tiny-llama",
        max_completion_tokens=4,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Hello"}],
    )
    chunks = list(stream)  # the SDK stops at `data: [DONE]`; a missing terminator would hang or raise
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and 0 < chunks[-1].usage.completion_tokens <= 4


def test_chat_refuses_n_above_one_and_unknown_models(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-llama", n=2, messages=[{"role": "user", "content": "Hi"}])
    assert info.value.body["param"] == "n"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ft:nothing", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ft:nothing", stream=True, messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-llama", messages=[{"role": "wizard", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-llama", messages=[])
    assert info.value.body["param"] == "messages"


def test_responses_validate_strictly_against_the_sdk_types(server, client):
    from openai.types import FileDeleted, FileObject, Model
    from openai.types.chat import ChatCompletion
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

    def get(path: str, method: str = "GET", **kwargs):
        response = httpx.request(
            method, server.url + "/v1" + path, headers={"Authorization": f"Bearer {API_KEY}"}, **kwargs
        )
        assert response.status_code == 200, response.text
        return response.json()

    file = FileObject.model_validate(
        get("/files", "POST", files={"file": ("s.jsonl", jsonl([example(1)] * 10))}, data={"purpose": "fine-tune"})
    )
    job = FineTuningJob.model_validate(
        get("/fine_tuning/jobs", "POST", json={"model": "tiny-llama", "training_file": file.id})
    )
    for raw in get(f"/fine_tuning/jobs/{job.id}/events")["data"]:
        FineTuningJobEvent.model_validate(raw)
    for raw in get("/models")["data"]:
        Model.model_validate(raw)
    ChatCompletion.model_validate(
        get(
            "/chat/completions",
            "POST",
            json={"model": "tiny-llama", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]},
        )
    )
    FineTuningJob.model_validate(get(f"/fine_tuning/jobs/{job.id}/cancel", "POST"))
    FileDeleted.model_validate(get(f"/files/{file.id}", "DELETE"))


def test_a_job_launched_from_a_dashboard_dataset_is_visible_through_v1(server, client):
    from openai.types.fine_tuning import FineTuningJob

    from app.datasets.datasets import create_dataset
    from app.datasets.importer import import_jsonl
    from app.jobs.jobs import JobRequest, create_job

    engine = make_engine(server.settings)
    with Session(engine, expire_on_commit=False) as session:
        dataset = create_dataset(session, "dashboard dataset")
        import_jsonl(session, dataset.id, io.BytesIO(jsonl([example(i) for i in range(10)])))
        job = create_job(session, server.settings, JobRequest(dataset_id=dataset.id, model="tiny-llama"))
    engine.dispose()
    seen = client.fine_tuning.jobs.retrieve(job.id)
    assert (seen.id, seen.model, seen.status) == (job.id, "tiny-llama", "queued")
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(limit=100)]
    raw = httpx.get(f"{server.url}/v1/fine_tuning/jobs/{job.id}", headers={"Authorization": f"Bearer {API_KEY}"})
    assert FineTuningJob.model_validate(raw.json()).training_file  # a stable name even without a /v1 file
    client.fine_tuning.jobs.cancel(job.id)
