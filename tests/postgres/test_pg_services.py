"""Datasets, import/export, the dataset API and the jobs service on PostgreSQL.

The other areas' tests are imported, so they are collected here and run against this folder's PostgreSQL
`settings`; the job lifecycle below drives the real worker (fake trainer) through the services.
"""

from __future__ import annotations

import io

from sqlmodel import Session, select

from app.datasets.datasets import create_dataset
from app.datasets.exporter import export_jsonl
from app.datasets.importer import import_jsonl
from app.jobs import jobs
from app.tables import JobStatus, TunedModel
from app.worker.loop import Worker
from tests.conftest import FIXTURES
from tests.integration.test_datasets_api import (  # noqa: F401
    test_export_streams_application_jsonl_by_split,
    test_import_returns_imported_count_and_rejected_lines,
)
from tests.integration.test_jobs_service import (  # noqa: F401
    test_cancelling_a_queued_job_ends_it_and_a_finished_job_cannot_be_cancelled,
    test_cancelling_a_running_job_flags_it_for_its_worker,
    test_events_are_deduplicated_by_id_and_paged_newest_first,
    test_jobs_list_newest_first_with_cursor_filters_and_metadata,
    test_launch_writes_an_immutable_snapshot_of_the_valid_examples,
    test_rerun_reuses_the_snapshots_and_settings,
)
from tests.support.builders import make_dataset
from tests.support.worker_main import FAKE_TRAINER
from tests.unit.test_export import (  # noqa: F401
    test_export_filters_by_split_and_leaves_out_invalid_examples_unless_asked,
    test_exported_file_imported_again_gives_the_same_examples,
)
from tests.unit.test_import import (  # noqa: F401
    dataset,
    test_a_crash_halfway_leaves_no_half_imported_dataset,
    test_import_reports_line_number_of_bad_json,
    test_other_top_level_keys_and_tools_are_kept_verbatim,
)


def test_a_dataset_imported_and_exported_on_postgres_comes_back_byte_for_byte(session):
    source = create_dataset(session, "pirates")
    raw = (FIXTURES / "pirate_training_set.jsonl").read_bytes()
    result = import_jsonl(session, source.id, io.BytesIO(raw))
    assert result.imported == len(raw.splitlines()) and not result.rejected
    exported = b"".join(export_jsonl(session, source.id, only_valid=False))
    again = create_dataset(session, "again")
    import_jsonl(session, again.id, io.BytesIO(exported))
    assert b"".join(export_jsonl(session, again.id, only_valid=False)) == exported


def test_a_local_job_runs_from_queue_to_tuned_model_through_the_services(session, settings, engine, monkeypatch):
    monkeypatch.setenv("TB_FAKE_STEP_SECONDS", "0.005")
    job = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id, suffix="pg"))
    assert job.status == JobStatus.queued
    Worker(settings, engine, providers=["local"], provider_options={"local": {"command": FAKE_TRAINER}}).run(once=True)
    with Session(engine, expire_on_commit=False) as s:
        done = jobs.get_job(s, job.id)
        events = [e.message for e in jobs.list_events(s, job.id)]
        steps = [c.step_number for c in jobs.list_checkpoints(s, job.id)]
        model = s.exec(select(TunedModel).where(TunedModel.job_id == job.id)).one()
    assert done.status == JobStatus.succeeded and done.trained_tokens == 800
    assert events[0] == f"Created fine-tuning job: {job.id}" and events[-1] == "The job has successfully completed"
    assert steps == [8, 4]
    assert model.id == done.fine_tuned_model and model.path == f"jobs/{job.id}/adapter"
