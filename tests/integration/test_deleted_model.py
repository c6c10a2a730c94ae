"""Deleting a tuned model: the job page says so and when, its checkpoints stay usable and labelled, and the
delete ends with a message."""

from __future__ import annotations

from sqlmodel import Session, select

from app.settings.store import MAINTENANCE, set_value
from app.tables import Checkpoint, Job, JobEvent, JobStatus, TunedModel

MODEL_ID = "ft:tiny-llama:demo:ftjob-del"
CKPT_ID = "ft:tiny-llama:demo:ftjob-del:ckpt-step-2"


def seed(session: Session) -> Job:
    job = Job(model="tiny-llama", status=JobStatus.succeeded, fine_tuned_model=MODEL_ID)
    session.add(job)
    session.commit()
    session.add(TunedModel(id=MODEL_ID, job_id=job.id, base_model="tiny-llama", path="models/del"))
    session.add(Checkpoint(job_id=job.id, step_number=2, fine_tuned_model_checkpoint=CKPT_ID, path="ckpt/del"))
    session.commit()
    set_value(session, MAINTENANCE, True)
    return job


def test_job_page_says_the_model_was_deleted_and_when_without_a_delete_button(client, session):
    job = seed(session)
    assert "Delete tuned model" in client.get(f"/jobs/{job.id}").text
    assert client.post(f"/jobs/{job.id}/delete-model", follow_redirects=False).status_code == 303
    html = client.get(f"/jobs/{job.id}").text
    assert "Delete tuned model" not in html
    session.expire_all()
    model = session.get(TunedModel, MODEL_ID)
    assert model is not None and model.deleted_at is not None
    assert f"Tuned model deleted on {model.deleted_at.strftime('%Y-%m-%d %H:%M')} UTC" in html
    event = session.exec(select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type == "model_deleted")).one()
    assert event.data["model"] == MODEL_ID
    again = client.post(f"/jobs/{job.id}/delete-model")
    assert again.status_code == 409 and "already deleted" in again.text


def test_checkpoints_of_a_deleted_model_stay_usable_and_are_labelled(client, api, session):
    seed(session)
    assert api.delete(f"/v1/models/{MODEL_ID}").json()["deleted"] is True
    ids = [m["id"] for m in api.get("/v1/models").json()["data"]]
    assert CKPT_ID in ids and MODEL_ID not in ids
    assert api.get(f"/v1/models/{CKPT_ID}").status_code == 200
    assert api.get(f"/v1/models/{MODEL_ID}").status_code == 404
    html = client.get("/playground").text
    # The picker names the checkpoint in words (its id is the option's value) and says its model is gone.
    option = html.split(f'<option value="{CKPT_ID}"', 1)[1].split("</option>", 1)[0]
    label = option.split(">", 1)[1]
    assert label.startswith("tiny-llama · ") and label.endswith(" · step 2 (checkpoint of a deleted model)")


def test_deleting_from_the_models_page_ends_with_a_message(client, session):
    seed(session)
    response = client.post(f"/models/{MODEL_ID}/delete")
    assert response.status_code == 200
    assert "Deleted the tuned model" in response.text and MODEL_ID in response.text
    assert "Deleted the tuned model" not in client.get("/models?deleted=ft:nope").text
