"""The schema and basic persistence work on PostgreSQL exactly as on SQLite."""

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, select

from app.tables import Dataset, Example, Job, JobEvent
from app.tables.db import make_engine

pytestmark = pytest.mark.postgres


def test_migrations_create_every_table_on_postgres(pg_settings):
    engine = make_engine(pg_settings)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"datasets", "examples", "jobs", "job_events", "checkpoints", "snapshots", "files", "api_keys"} <= tables


def test_json_columns_and_event_sequence_round_trip_on_postgres(pg_settings):
    engine = make_engine(pg_settings)
    with Session(engine) as session:
        dataset = Dataset(name="pg")
        session.add(dataset)
        session.commit()
        messages = [{"role": "user", "content": "héllo ✓"}, {"role": "assistant", "content": "hi", "weight": 1}]
        session.add(Example(dataset_id=dataset.id, messages=messages, tools=[{"type": "function"}]))
        job = Job(model="SmolLM2-135M-Instruct")
        session.add(job)
        session.commit()
        first = JobEvent(job_id=job.id, message="one")
        second = JobEvent(job_id=job.id, message="two")
        session.add(first)
        session.commit()
        session.add(second)
        session.commit()
        stored = session.exec(select(Example)).one()
        assert stored.messages == messages and stored.tools == [{"type": "function"}]
        assert second.seq > first.seq
    engine.dispose()
