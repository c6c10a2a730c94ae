"""Migration 0008 adds each example's source file and line: NULL for the rows already there, gone on downgrade."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from tests.conftest import database_at

SOURCE = {"source_file", "source_line"}


def columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("examples")}


def test_existing_examples_keep_their_rows_with_no_source_and_downgrade_drops_the_columns(tmp_path):
    config, engine = database_at(tmp_path / "data", "0007")
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
    assert not SOURCE & columns(engine)

    command.upgrade(config, "0008")
    assert columns(engine) >= SOURCE
    with engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT id, source_file, source_line FROM examples").one()
    assert tuple(row) == (1, None, None)

    command.downgrade(config, "0007")
    assert not SOURCE & columns(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM examples").scalar_one() == 1
    engine.dispose()


def test_the_migrated_columns_are_what_the_table_declares(tmp_path):
    _, engine = database_at(tmp_path / "data", "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diffs if any(name in repr(d) for name in SOURCE)] == []
    engine.dispose()
