"""The models page: tuned models with job, base model, dataset snapshot; chat links; guarded delete."""

from __future__ import annotations

from sqlmodel import Session

from app.settings.store import MAINTENANCE, set_value
from app.tables import Dataset, Job, JobStatus, Snapshot, TunedModel

MODEL_ID = "ft:tiny-llama:demo:ftjob-abc"


def seed(session: Session) -> TunedModel:
    ds = Dataset(name="Pirate <voice>")
    session.add(ds)
    session.commit()
    snap = Snapshot(dataset_id=ds.id, path="snapshots/x.jsonl", sha256="ab" * 32, n_examples=15)
    session.add(snap)
    session.commit()
    job = Job(
        model="tiny-llama",
        status=JobStatus.succeeded,
        dataset_id=ds.id,
        training_snapshot_id=snap.id,
        fine_tuned_model=MODEL_ID,
    )
    session.add(job)
    session.commit()
    model = TunedModel(id=MODEL_ID, job_id=job.id, base_model="tiny-llama")
    session.add(model)
    session.commit()
    return model


def test_models_page_lists_tuned_models_with_job_dataset_snapshot_and_chat_links(client, session):
    model = seed(session)
    html = client.get("/models").text
    assert MODEL_ID in html and f"/jobs/{model.job_id}" in html
    assert "Pirate &lt;voice&gt;" in html and "15 examples" in html and "sha256 abababababab" in html
    assert "/playground?model=ft%3Atiny-llama%3Ademo%3Aftjob-abc" in html
    assert "/playground/compare?model=ft%3Atiny-llama%3Ademo%3Aftjob-abc&amp;model=tiny-llama" in html


def test_delete_is_hidden_and_refused_while_switched_off_and_works_when_on(client, session):
    seed(session)
    set_value(session, MAINTENANCE, False)
    html = client.get("/models").text
    assert ">Delete</button>" not in html
    assert client.post(f"/models/{MODEL_ID}/delete").status_code == 403
    set_value(session, MAINTENANCE, True)
    assert client.post(f"/models/{MODEL_ID}/delete", follow_redirects=False).status_code == 303
    assert MODEL_ID not in client.get("/models").text


def test_empty_models_page_points_to_a_new_fine_tune(client):
    assert "Start a fine-tune" in client.get("/models").text
