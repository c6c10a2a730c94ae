"""Friendly names: suffix, base model's short name, dataset and date instead of raw ids."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session

from app.jobs.naming import friendly_name, job_names, model_names, short_base_name, short_date
from app.tables import Checkpoint, Dataset, Job, JobStatus, TunedModel

TODAY = date(2026, 12, 3)
DEC_3 = datetime(2026, 12, 3, 5, 32, tzinfo=UTC)


def test_short_base_name_drops_organisation_instruct_tail_and_date_stamp():
    assert short_base_name("SmolLM2-135M-Instruct") == "SmolLM2-135M"
    assert short_base_name("HuggingFaceTB/SmolLM2-360M-Instruct") == "SmolLM2-360M"
    assert short_base_name("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert short_base_name("Qwen2.5-0.5B-chat") == "Qwen2.5-0.5B"
    assert short_base_name("tiny-llama") == "tiny-llama"


def test_short_date_names_the_year_only_when_it_is_not_this_year():
    assert short_date(DEC_3, TODAY) == "Dec 3"
    assert short_date(datetime(2025, 1, 14, tzinfo=UTC), TODAY) == "Jan 14, 2025"


def test_friendly_name_reads_suffix_model_dataset_and_date():
    name = friendly_name(
        base_model="SmolLM2-135M-Instruct",
        created_at=DEC_3,
        suffix="support-bot",
        dataset_name="Pirate voice",
        today=TODAY,
    )
    assert name == "support-bot · SmolLM2-135M · Pirate voice · Dec 3"


def test_friendly_name_leaves_out_what_is_missing():
    assert friendly_name(base_model="SmolLM2-135M-Instruct", created_at=DEC_3, today=TODAY) == "SmolLM2-135M · Dec 3"
    assert friendly_name(base_model="tiny", created_at=None, suffix="  ", dataset_name="") == "tiny"


def test_job_and_model_names_come_from_the_job_its_dataset_and_checkpoint_step(session: Session):
    dataset = Dataset(name="Pirate voice")
    session.add(dataset)
    session.commit()
    job = Job(
        model="SmolLM2-135M-Instruct",
        status=JobStatus.succeeded,
        suffix="support-bot",
        dataset_id=dataset.id,
        created_at=DEC_3,
        fine_tuned_model="ft:SmolLM2-135M-Instruct:support-bot:ftjob-1",
    )
    session.add(job)
    session.commit()
    session.add(TunedModel(id=job.fine_tuned_model, job_id=job.id, base_model=job.model))
    session.add(Checkpoint(job_id=job.id, step_number=30, fine_tuned_model_checkpoint="ft:x:ckpt-step-30"))
    session.commit()

    assert job_names(session, [job], TODAY) == {job.id: "support-bot · SmolLM2-135M · Pirate voice · Dec 3"}
    names = model_names(session, [job.fine_tuned_model, "ft:x:ckpt-step-30", "tiny-llama"], TODAY)
    assert names == {
        job.fine_tuned_model: "support-bot · SmolLM2-135M · Pirate voice · Dec 3",
        "ft:x:ckpt-step-30": "support-bot · SmolLM2-135M · Pirate voice · Dec 3 · step 30",
    }
