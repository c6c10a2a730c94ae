"""The maintenance switch: off on a new installation; while off, every door refuses cancel and delete.

Doors: /v1 (OpenAI's error shape, the SDK's PermissionDeniedError), /api ({"detail", "code"}) and the dashboard
(a flash message). Reading and listing are never blocked. TUNEBOARD_MAINTENANCE, when given, is written as the
stored value at start; the settings page and GET/PUT /api/settings/maintenance read and change the stored value.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from sqlmodel import Session

from app.config import Settings
from app.main import create_app
from app.settings.maintenance import maintenance_enabled, set_maintenance
from app.settings.store import set_value
from app.tables import Job, JobStatus, TunedModel, UploadedFile
from app.tables.common import utcnow
from tests.conftest import API_KEY

MODEL_ID = "ft:tiny-llama:maint:ftjob-m1"
HX = {"HX-Request": "true"}
JSONL = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


def queued_job(session: Session) -> Job:
    job = Job(model="tiny-llama", status=JobStatus.queued)
    session.add(job)
    session.commit()
    return job


def tuned_model(session: Session, settings: Settings) -> TunedModel:
    """A succeeded job's local tuned model, its adapter directory on disk."""
    job = Job(model="tiny-llama", status=JobStatus.succeeded, finished_at=utcnow(), fine_tuned_model=MODEL_ID)
    session.add(job)
    session.commit()
    adapter = settings.storage_path("jobs", job.id, "adapter")
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    model = TunedModel(id=MODEL_ID, job_id=job.id, base_model="tiny-llama", path=f"jobs/{job.id}/adapter")
    session.add(model)
    session.commit()
    return model


def upload(api: TestClient) -> str:
    created = api.post("/v1/files", files={"file": ("m.jsonl", JSONL)}, data={"purpose": "fine-tune"})
    assert created.status_code == 200, created.text
    return created.json()["id"]


def fresh(session: Session, row_type, key):
    session.expire_all()
    return session.get(row_type, key)


def assert_v1_refusal(response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("permission_error", "maintenance_disabled", None)
    assert "maintenance is switched off" in error["message"]
    assert "TUNEBOARD_MAINTENANCE=1" in error["message"] and "/settings" in error["message"]


def assert_api_refusal(response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "maintenance_disabled" and "TUNEBOARD_MAINTENANCE=1" in body["detail"]


def assert_flash_refusal(response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["HX-Retarget"] == "#flash"
    assert 'data-code="maintenance_disabled"' in response.text and "maintenance is switched off" in response.text


# -- the stored value and its doors -------------------------------------------------------------------------------
def test_a_new_installation_starts_with_maintenance_off(api, session):
    assert maintenance_enabled(session) is False
    assert api.get("/api/settings/maintenance").json() == {"enabled": False}


def test_an_installation_that_switched_destructive_actions_on_keeps_maintenance_on(session):
    set_value(session, "destructive_actions_enabled", True)  # stored under the switch's former name
    assert maintenance_enabled(session) is True


def test_the_api_reads_and_changes_the_stored_switch(api, session):
    assert api.put("/api/settings/maintenance", json={"enabled": True}).json() == {"enabled": True}
    assert api.get("/api/settings/maintenance").json() == {"enabled": True}
    session.expire_all()
    assert maintenance_enabled(session) is True
    assert api.put("/api/settings/maintenance", json={"enabled": False}).json() == {"enabled": False}
    assert api.get("/api/settings/maintenance").json() == {"enabled": False}


@pytest.mark.parametrize("body", [{}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": None}])
def test_the_api_refuses_anything_but_a_boolean(api, body):
    response = api.put("/api/settings/maintenance", json=body)
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    assert api.get("/api/settings/maintenance").json() == {"enabled": False}


# -- /v1 ----------------------------------------------------------------------------------------------------------
def test_v1_cancel_is_refused_while_off_and_works_when_on(api, session):
    job = queued_job(session)
    assert_v1_refusal(api.post(f"/v1/fine_tuning/jobs/{job.id}/cancel"))
    assert fresh(session, Job, job.id).status == JobStatus.queued
    assert api.get(f"/v1/fine_tuning/jobs/{job.id}").status_code == 200  # reading is never blocked
    api.put("/api/settings/maintenance", json={"enabled": True})
    assert api.post(f"/v1/fine_tuning/jobs/{job.id}/cancel").json()["status"] == "cancelled"


def test_v1_model_delete_is_refused_while_off_and_works_when_on(api, session, settings):
    model = tuned_model(session, settings)
    adapter = settings.data_dir / model.path
    assert_v1_refusal(api.delete(f"/v1/models/{MODEL_ID}"))
    assert adapter.is_dir() and fresh(session, TunedModel, MODEL_ID).deleted_at is None
    assert MODEL_ID in [m["id"] for m in api.get("/v1/models").json()["data"]]  # listing is never blocked
    set_maintenance(session, True)
    assert api.delete(f"/v1/models/{MODEL_ID}").json()["deleted"] is True
    assert not adapter.exists()


def test_v1_file_delete_is_refused_while_off_and_works_when_on(api, session):
    file_id = upload(api)
    assert_v1_refusal(api.delete(f"/v1/files/{file_id}"))
    assert fresh(session, UploadedFile, file_id).deleted_at is None
    assert api.get(f"/v1/files/{file_id}/content").content == JSONL
    set_maintenance(session, True)
    assert api.delete(f"/v1/files/{file_id}").json()["deleted"] is True
    assert api.get(f"/v1/files/{file_id}").status_code == 404


def test_unknown_ids_are_still_not_found_while_off(api):
    assert api.post("/v1/fine_tuning/jobs/ftjob-nope/cancel").status_code == 404
    assert api.delete("/v1/models/ft:tiny-llama:x:ftjob-nope").status_code == 404
    assert api.delete("/v1/files/file-nope").status_code == 404
    assert api.delete("/api/models/ft:tiny-llama:x:ftjob-nope").status_code == 404


# -- /api ---------------------------------------------------------------------------------------------------------
def test_api_cancel_is_refused_while_off_and_works_when_on(api, session):
    job = queued_job(session)
    assert_api_refusal(api.post(f"/api/jobs/{job.id}/cancel"))
    assert fresh(session, Job, job.id).status == JobStatus.queued
    set_maintenance(session, True)
    assert api.post(f"/api/jobs/{job.id}/cancel").json()["status"] == "cancelled"


def test_api_model_delete_is_refused_while_off_and_works_when_on(api, session, settings):
    tuned_model(session, settings)
    assert_api_refusal(api.delete(f"/api/models/{MODEL_ID}"))
    assert fresh(session, TunedModel, MODEL_ID).deleted_at is None
    assert MODEL_ID in [m["id"] for m in api.get("/api/models").json()["data"]]
    set_maintenance(session, True)
    assert api.delete(f"/api/models/{MODEL_ID}").json()["deleted"] is True


# -- the dashboard ------------------------------------------------------------------------------------------------
def test_dashboard_cancel_is_refused_with_a_flash_message_and_the_button_gives_way_to_a_hint(client, session):
    job = queued_job(session)
    page = client.get(f"/jobs/{job.id}").text
    assert "Cancel job" not in page and 'href="/settings#maintenance"' in page
    assert_flash_refusal(client.post(f"/jobs/{job.id}/cancel", headers=HX))
    assert fresh(session, Job, job.id).status == JobStatus.queued
    set_maintenance(session, True)
    assert "Cancel job" in client.get(f"/jobs/{job.id}").text
    assert client.post(f"/jobs/{job.id}/cancel", headers=HX).status_code == 200
    assert fresh(session, Job, job.id).status == JobStatus.cancelled


def test_dashboard_model_deletes_are_refused_with_a_flash_message_and_hinted(client, session, settings):
    model = tuned_model(session, settings)
    job_page, models_page = client.get(f"/jobs/{model.job_id}").text, client.get("/models").text
    assert "Delete tuned model" not in job_page and 'href="/settings#maintenance"' in job_page
    assert ">Delete</button>" not in models_page and 'href="/settings#maintenance"' in models_page
    assert_flash_refusal(client.post(f"/jobs/{model.job_id}/delete-model", headers=HX))
    assert_flash_refusal(client.post(f"/models/{MODEL_ID}/delete", headers=HX))
    assert fresh(session, TunedModel, MODEL_ID).deleted_at is None
    set_maintenance(session, True)
    assert 'hx-post="/models/' in client.get("/models").text
    deleted = client.post(f"/models/{MODEL_ID}/delete", headers=HX)
    assert (
        deleted.status_code == 200 and deleted.headers["HX-Redirect"] == f"/models?deleted={quote(MODEL_ID, safe='')}"
    )
    assert fresh(session, TunedModel, MODEL_ID).deleted_at is not None


def test_a_plain_form_post_while_off_gets_the_message_on_an_error_page(client, session, settings):
    tuned_model(session, settings)
    refused = client.post(f"/models/{MODEL_ID}/delete")
    assert refused.status_code == 403 and "maintenance is switched off" in refused.text


def test_the_settings_page_explains_the_switch_and_toggles_it(client, api, session):
    page = client.get("/settings").text
    assert 'id="maintenance"' in page and "Listing and reading are never blocked" in page
    assert 'id="maintenance-state">off<' in page and "TUNEBOARD_MAINTENANCE=1" in page
    assert 'name="enabled" value="on" checked' not in page
    on = client.post("/settings/destructive", data={"enabled": "on"})
    assert on.status_code == 200 and 'id="maintenance-state">on<' in on.text
    assert 'name="enabled" value="on" checked' in on.text
    assert api.get("/api/settings/maintenance").json() == {"enabled": True}
    client.post("/settings/destructive", data={})
    assert api.get("/api/settings/maintenance").json() == {"enabled": False}


# -- TUNEBOARD_MAINTENANCE at start --------------------------------------------------------------------------------
@contextmanager
def started(settings: Settings) -> Iterator[TestClient]:
    """A client of an app built on these settings, its start (lifespan) run."""
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        yield api


def test_the_environment_variable_turns_maintenance_on_at_start(settings, session, monkeypatch):
    monkeypatch.setenv("TUNEBOARD_MAINTENANCE", "1")
    from_env = Settings(**settings.model_dump(exclude={"maintenance"}))
    assert from_env.maintenance is True
    with started(from_env) as api:
        assert api.get("/api/settings/maintenance").json() == {"enabled": True}
        job = queued_job(session)
        assert api.post(f"/v1/fine_tuning/jobs/{job.id}/cancel").json()["status"] == "cancelled"
        page = api.get("/settings").text  # the page says where the value comes from
        assert "TUNEBOARD_MAINTENANCE=1</code>, which sets it on at every start" in page


def test_the_environment_value_wins_at_each_start_and_unset_keeps_the_stored_value(settings, session):
    with started(settings.model_copy(update={"maintenance": False})) as api:
        assert api.put("/api/settings/maintenance", json={"enabled": True}).json() == {"enabled": True}
    with started(settings.model_copy(update={"maintenance": False})) as api:
        assert api.get("/api/settings/maintenance").json() == {"enabled": False}  # written again at start
        api.put("/api/settings/maintenance", json={"enabled": True})
    with started(settings) as api:  # unset: the stored value stands
        assert api.get("/api/settings/maintenance").json() == {"enabled": True}


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("0", False), ("off", False), ("", None)])
def test_the_environment_variable_reads_as_a_boolean_and_blank_as_unset(monkeypatch, tmp_path, raw, expected):
    monkeypatch.setenv("TUNEBOARD_MAINTENANCE", raw)
    assert Settings(data_dir=tmp_path).maintenance is expected


# -- the real openai SDK against a real server ---------------------------------------------------------------------
def test_the_openai_sdk_gets_permission_denied_with_code_maintenance_disabled(live_server, settings, engine):
    with Session(engine, expire_on_commit=False) as session:
        job = queued_job(session)
        tuned_model(session, settings)
    with OpenAI(base_url=live_server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
        file_id = client.files.create(file=("m.jsonl", io.BytesIO(JSONL)), purpose="fine-tune").id
        for refused in (
            lambda: client.fine_tuning.jobs.cancel(job.id),
            lambda: client.models.delete(MODEL_ID),
            lambda: client.files.delete(file_id),
        ):
            with pytest.raises(openai.PermissionDeniedError) as info:
                refused()
            assert info.value.status_code == 403 and info.value.code == "maintenance_disabled"
            assert "TUNEBOARD_MAINTENANCE=1" in info.value.message
        assert client.files.retrieve(file_id).id == file_id
        with Session(engine) as session:
            set_maintenance(session, True)
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        assert client.models.delete(MODEL_ID).deleted is True
        assert client.files.delete(file_id).deleted is True
