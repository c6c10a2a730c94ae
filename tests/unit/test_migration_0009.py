"""Migration 0009 adds preference datasets: every existing dataset is supervised, its examples have no answers
beside their messages, and downgrade drops the columns without losing a row."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from app.tables.dataset import Example
from tests.conftest import database_at

ANSWERS = {"preferred_output", "non_preferred_output"}


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_existing_datasets_become_supervised_and_downgrade_drops_the_columns(tmp_path):
    config, engine = database_at(tmp_path / "data", "0008")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at) "
            "VALUES (1, 'd', '', '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO examples (id, dataset_id, position, messages, note, version, valid, n_errors, n_warnings, "
            "n_messages, content_hash, search_text, created_at, updated_at) "
            "VALUES (1, 1, 0, '[]', '', 1, 1, 0, 0, 0, 'h', '', '2026-01-01', '2026-01-01')"
        )
    assert "kind" not in columns(engine, "datasets")

    command.upgrade(config, "0009")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT kind FROM datasets").scalar_one() == "supervised"
        row = connection.exec_driver_sql("SELECT preferred_output, non_preferred_output FROM examples").one()
    assert tuple(row) == (None, None)

    command.downgrade(config, "0008")
    assert "kind" not in columns(engine, "datasets")
    assert not ANSWERS & columns(engine, "examples")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM examples").scalar_one() == 1
    engine.dispose()


def test_the_migrated_columns_are_what_the_tables_declare(tmp_path):
    _, engine = database_at(tmp_path / "data", "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diffs if any(name in repr(d) for name in (*ANSWERS, "'kind'"))] == []
    engine.dispose()


def test_a_preference_example_exports_in_openai_dpo_shape():
    example = Example(
        dataset_id=1,
        messages=[{"role": "user", "content": "Hi"}],
        preferred_output=[{"role": "assistant", "content": "Hello! Cheers."}],
        non_preferred_output=[{"role": "assistant", "content": "Hello."}],
        extra={"metadata": {"k": "v"}},
    )
    assert example.to_record() == {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello! Cheers."}],
        "non_preferred_output": [{"role": "assistant", "content": "Hello."}],
        "metadata": {"k": "v"},
    }
    assert Example(dataset_id=1, messages=[{"role": "user", "content": "Hi"}]).to_record() == {
        "messages": [{"role": "user", "content": "Hi"}]
    }
