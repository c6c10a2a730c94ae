"""The schema and basic persistence work on PostgreSQL exactly as on SQLite."""

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from app.tables import Dataset, Example, Job, JobEvent
from app.tables.db import make_engine
from app.tables.migrate import alembic_config, upgrade
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres


def test_migrations_create_every_table_on_postgres(pg_settings):
    engine = make_engine(pg_settings)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"datasets", "examples", "jobs", "job_events", "checkpoints", "snapshots", "files", "api_keys"} <= tables


@pytest.mark.parametrize("layout", [("0004", "pg09"), ("0004",), ("pg09",)], ids="+".join)
def test_a_database_at_the_old_heads_upgrades_to_the_one_head_on_postgres(tmp_path, pg_cluster, layout):
    settings = make_settings(tmp_path / "data", database_url=pg_cluster.create_database())
    config = alembic_config(settings)
    for revision in layout:  # where databases made before the merge (0005) can be
        command.upgrade(config, revision)
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO datasets (name, description, created_at, updated_at) VALUES ('kept', '', now(), now())")
        )

    upgrade(settings)
    upgrade(settings)

    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (
            "0011",
        )  # the one head, descending from the merge
        triggers = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
        assert conn.execute(text("SELECT name FROM datasets")).scalars().all() == ["kept"]
    assert {"job_events_notify", "jobs_status_notify"} <= triggers
    assert "workers" in inspect(engine).get_table_names()
    assert {"rev", "source_file", "source_line", "near_signature"} <= {
        c["name"] for c in inspect(engine).get_columns("examples")
    }
    engine.dispose()


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
