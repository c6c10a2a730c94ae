"""The jobs service: launch checks, immutable snapshots, listing, cancel, rerun, events."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlmodel import select

from app.datasets.snapshots import snapshot_path
from app.errors import Invalid, NotFound
from app.jobs import jobs
from app.jobs.queue import claim_next
from app.settings.maintenance import set_maintenance
from app.tables import Example, Job, JobStatus, Snapshot
from tests.support.builders import chat, make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401


def launch(session, settings, dataset, **kw):
    return jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id, **kw))


def test_launch_writes_an_immutable_snapshot_of_the_valid_examples(session, settings):
    dataset = make_dataset(session, n_train=12, n_validation=3)
    job = launch(session, settings, dataset, hyperparameters={"n_epochs": 2}, suffix="math", seed=7)
    assert job.status == JobStatus.queued
    assert job.hyperparameters == {
        "n_epochs": 2,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "lora_rank": "auto",
    }
    train = session.get(Snapshot, job.training_snapshot_id)
    data = snapshot_path(settings, train).read_bytes()
    assert train.n_examples == 12 and train.sha256 == hashlib.sha256(data).hexdigest()
    assert session.get(Snapshot, job.validation_snapshot_id).n_examples == 3
    # Editing the dataset afterwards changes nothing the job says it trained on.
    example = session.exec(select(Example).where(Example.dataset_id == dataset.id)).first()
    example.messages = [{"role": "user", "content": "changed"}, {"role": "assistant", "content": "x"}]
    session.commit()
    assert snapshot_path(settings, train).read_bytes() == data
    assert json.loads(data.splitlines()[0])["messages"][1]["content"] == "What is 0 plus 0?"


def test_launch_refuses_fewer_than_ten_valid_examples_with_openais_code(session, settings):
    dataset = make_dataset(session, n_train=4)
    with pytest.raises(Invalid) as refused:
        launch(session, settings, dataset)
    assert refused.value.code == "invalid_n_examples"
    assert "10" in refused.value.message
    assert session.exec(select(Job)).first() is None


def test_launch_refuses_a_dataset_with_errors(session, settings):
    dataset = make_dataset(session, n_train=12, n_broken=1)
    with pytest.raises(Invalid) as refused:
        launch(session, settings, dataset)
    assert refused.value.code == "dataset_has_errors"


def test_launch_refuses_unknown_hyperparameters_and_bad_values_in_plain_words(session, settings):
    dataset = make_dataset(session)
    with pytest.raises(Invalid, match="n_epochs must be between"):
        launch(session, settings, dataset, hyperparameters={"n_epochs": 0})
    with pytest.raises(Invalid, match="Unknown hyperparameter 'warmup'"):
        launch(session, settings, dataset, hyperparameters={"warmup": 3})
    with pytest.raises(Invalid, match="lora_rank"):
        launch(session, settings, dataset, provider="openai", hyperparameters={"lora_rank": 8})


def test_openai_method_shape_is_accepted(session, settings):
    dataset = make_dataset(session)
    method = {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4}}}
    job = launch(session, settings, dataset, method=method)
    assert job.method["supervised"]["hyperparameters"]["batch_size"] == 4


def test_jobs_list_newest_first_with_cursor_filters_and_metadata(session, settings):
    dataset = make_dataset(session)
    made = [launch(session, settings, dataset, metadata={"run": str(i % 2)}) for i in range(5)]
    page, more = jobs.list_jobs(session, limit=2)
    assert [j.id for j in page] == [made[4].id, made[3].id] and more
    page, more = jobs.list_jobs(session, after=page[-1].id, limit=10)
    assert [j.id for j in page] == [made[2].id, made[1].id, made[0].id] and not more
    odd, _ = jobs.list_jobs(session, metadata={"run": "1"})
    assert {j.id for j in odd} == {made[1].id, made[3].id}
    assert jobs.list_jobs(session, status="running")[0] == []


def test_cancelling_a_queued_job_ends_it_and_a_finished_job_cannot_be_cancelled(session, settings):
    set_maintenance(session, True)  # cancel and delete need the maintenance switch on
    job = launch(session, settings, make_dataset(session))
    assert jobs.cancel_job(session, job.id).status == JobStatus.cancelled
    with pytest.raises(Invalid) as refused:
        jobs.cancel_job(session, job.id)
    assert refused.value.code == "job_not_cancellable"
    with pytest.raises(NotFound):
        jobs.get_job(session, "ftjob-missing")


def test_cancelling_a_running_job_flags_it_for_its_worker(session, settings, engine):
    set_maintenance(session, True)
    job = launch(session, settings, make_dataset(session))
    assert claim_next(engine, "w1", ["local"]) == job.id
    session.expire_all()
    cancelled = jobs.cancel_job(session, job.id)
    assert cancelled.status == JobStatus.running and cancelled.cancel_requested


def test_rerun_reuses_the_snapshots_and_settings(session, settings):
    job = launch(session, settings, make_dataset(session), hyperparameters={"n_epochs": 3}, suffix="again")
    again = jobs.rerun_job(session, settings, job.id)
    assert again.id != job.id and again.training_snapshot_id == job.training_snapshot_id
    assert again.hyperparameters["n_epochs"] == 3 and again.suffix == "again"


def test_events_are_deduplicated_by_id_and_paged_newest_first(session, settings, engine):
    job = launch(session, settings, make_dataset(session))
    for i in range(5):
        jobs.record_event(engine, job.id, f"event {i}", event_id=f"ftevent-{i}")
    assert jobs.record_event(engine, job.id, "again", event_id="ftevent-3") is None
    everything = jobs.list_events(session, job.id)
    assert [e.message for e in everything][-5:] == [f"event {i}" for i in range(5)]
    page, more = jobs.events_page(session, job.id, limit=2)
    assert [e.id for e in page] == ["ftevent-4", "ftevent-3"] and more
    page, _ = jobs.events_page(session, job.id, after="ftevent-3", limit=2)
    assert [e.id for e in page] == ["ftevent-2", "ftevent-1"]
    later = jobs.list_events(session, job.id, after_seq=everything[-2].seq)
    assert [e.message for e in later] == ["event 4"]


def _upload(session, settings, lines: list[str]):
    from app.tables import UploadedFile

    path = settings.storage_path("files", "upload.jsonl")
    path.write_text("".join(line + "\n" for line in lines))
    upload = UploadedFile(filename="upload.jsonl", path="files/upload.jsonl", bytes=path.stat().st_size)
    session.add(upload)
    session.commit()
    return upload.id


def test_a_v1_training_file_with_too_few_examples_makes_the_job_fail_as_openai_does(session, settings):
    file_id = _upload(session, settings, [json.dumps(chat(i)) for i in range(3)])
    job = jobs.create_job(session, settings, jobs.JobRequest(training_file=file_id))
    assert job.status == JobStatus.failed and job.error["code"] == "invalid_n_examples"
    assert job.error["message"] == "Training file has 3 example(s), but must have at least 10 examples"


def test_a_v1_training_file_is_snapshotted_without_its_invalid_lines_and_the_job_fails_on_them(session, settings):
    file_id = _upload(session, settings, [json.dumps(chat(i)) for i in range(12)] + ["not json"])
    job = jobs.create_job(session, settings, jobs.JobRequest(training_file=file_id))
    assert job.error["code"] == "invalid_file_format" and "line 13" in job.error["message"]
    good = _upload(session, settings, [json.dumps(chat(i)) for i in range(12)])
    job = jobs.create_job(session, settings, jobs.JobRequest(training_file=good, suffix="v1"))
    assert job.status == JobStatus.queued and session.get(Snapshot, job.training_snapshot_id).n_examples == 12
