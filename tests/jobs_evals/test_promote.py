"""A checkpoint becomes the tuned model: service, /api and dashboard doors, and what stays reachable."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.errors import Invalid, NotFound
from app.jobs.jobs import delete_tuned_model
from app.jobs.model_catalog import resolve_model
from app.jobs.promote import promote_checkpoint, promoted_checkpoint_id
from app.settings.maintenance import set_maintenance
from app.tables import Checkpoint, Job, JobEvent, JobStatus, TunedModel
from tests.jobs_evals.conftest import TINY, FinishedJob, finished_job, settings, tiny_model

__all__ = ["finished_job", "settings", "tiny_model"]


def test_the_checkpoint_becomes_the_tuned_model_and_the_log_says_so(session, settings, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    model = promote_checkpoint(session, settings, job.id, best.id)
    assert model.id == job.fine_tuned_model and model.path == best.path
    resolved = resolve_model(session, settings, model.id)
    assert resolved.ref.adapter_path == settings.data_dir / best.path
    event = session.exec(select(JobEvent).where(JobEvent.type == "model_promoted")).one()
    assert event.message == f"The checkpoint at step 10 is now the tuned model {model.id}."
    assert event.data["previous_path"] == f"jobs/{job.id}/adapter" and event.data["checkpoint_id"] == best.id
    assert promoted_checkpoint_id(session, job) == best.id
    # The last checkpoint holds the weights the job ended with: still there to chat with.
    last = finished_job.checkpoints[-1]
    assert resolve_model(session, settings, last.fine_tuned_model_checkpoint).ref.adapter_path.is_dir()


def test_a_second_click_changes_nothing(session, settings, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    promote_checkpoint(session, settings, job.id, best.id)
    promote_checkpoint(session, settings, job.id, best.id)
    assert len(session.exec(select(JobEvent).where(JobEvent.type == "model_promoted")).all()) == 1


def test_without_a_checkpoint_at_the_last_step_the_final_adapter_becomes_one(session, settings, finished_job):
    job = finished_job.job
    last = finished_job.checkpoints[-1]
    session.delete(last)
    session.commit()
    promote_checkpoint(session, settings, job.id, finished_job.checkpoints[0].id)
    kept = session.exec(select(Checkpoint).where(Checkpoint.job_id == job.id, Checkpoint.step_number == 30)).one()
    assert kept.path == f"jobs/{job.id}/adapter"
    assert kept.fine_tuned_model_checkpoint == f"ft:{TINY}:demo:{job.id}:ckpt-step-30"
    assert kept.metrics["valid_loss"] == 0.9
    assert resolve_model(session, settings, kept.fine_tuned_model_checkpoint).kind == "checkpoint"
    # And it can be made the tuned model again: back to what the job ended with.
    promote_checkpoint(session, settings, job.id, kept.id)
    assert session.get(TunedModel, job.fine_tuned_model).path == f"jobs/{job.id}/adapter"


def test_deleting_a_promoted_model_keeps_its_checkpoints_files(session, settings, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    promote_checkpoint(session, settings, job.id, best.id)
    set_maintenance(session, True)
    delete_tuned_model(session, settings, job.fine_tuned_model)
    assert (settings.data_dir / best.path / "adapter_model.safetensors").exists()
    assert resolve_model(session, settings, best.fine_tuned_model_checkpoint).kind == "checkpoint"


def test_refusals_name_what_is_wrong(session, settings, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    with pytest.raises(NotFound) as missing:
        promote_checkpoint(session, settings, job.id, "ftckpt-nope")
    assert missing.value.code == "checkpoint_not_found"
    other = Job(provider="local", model=TINY, status=JobStatus.running)
    session.add(other)
    session.commit()
    with pytest.raises(NotFound):
        promote_checkpoint(session, settings, other.id, best.id)  # a checkpoint of another job
    session.add(Checkpoint(job_id=other.id, step_number=5, fine_tuned_model_checkpoint="x", path=best.path))
    session.commit()
    running = session.exec(select(Checkpoint).where(Checkpoint.job_id == other.id)).one()
    with pytest.raises(Invalid) as early:
        promote_checkpoint(session, settings, other.id, running.id)
    assert early.value.code == "job_not_succeeded"
    job.provider = "openai"
    session.add(job)
    session.commit()
    with pytest.raises(Invalid) as remote:
        promote_checkpoint(session, settings, job.id, best.id)
    assert remote.value.code == "checkpoint_not_promotable"


def test_a_checkpoint_whose_files_are_gone_is_refused(session, settings, finished_job: FinishedJob):
    import shutil

    best = finished_job.checkpoints[1]
    shutil.rmtree(settings.data_dir / best.path)
    with pytest.raises(Invalid) as gone:
        promote_checkpoint(session, settings, finished_job.job.id, best.id)
    assert gone.value.code == "checkpoint_missing"
    assert session.get(TunedModel, finished_job.job.fine_tuned_model).path.endswith("/adapter")


def test_api_promotes(api, session, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[1]
    response = api.post(f"/api/jobs/{job.id}/checkpoints/{best.id}/promote")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": job.fine_tuned_model,
        "object": "model",
        "job_id": job.id,
        "checkpoint_id": best.id,
    }
    session.expire_all()
    assert session.get(TunedModel, job.fine_tuned_model).path == best.path
    missing = api.post(f"/api/jobs/{job.id}/checkpoints/nope/promote")
    assert missing.status_code == 404 and missing.json()["code"] == "checkpoint_not_found"


def test_dashboard_button_promotes_and_returns_to_the_job(client, session, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    response = client.post(f"/jobs/{job.id}/checkpoints/{best.id}/promote", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/jobs/{job.id}"
    session.expire_all()
    assert session.get(TunedModel, job.fine_tuned_model).path == best.path
    page = client.get(f"/jobs/{job.id}").text
    assert f"The checkpoint at step 10 is now the tuned model {job.fine_tuned_model}." in page
