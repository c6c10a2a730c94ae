"""Migration 0010 adds the revision history table (nothing existing is rewritten) and downgrade drops it."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from tests.conftest import database_at


def test_the_revision_table_comes_and_goes_and_matches_its_declaration(tmp_path):
    config, engine = database_at(tmp_path / "data", "0009")
    assert "dataset_revisions" not in inspect(engine).get_table_names()
    command.upgrade(config, "0010")
    assert "dataset_revisions" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diffs if "dataset_revisions" in repr(d)] == []
    command.downgrade(config, "0009")
    assert "dataset_revisions" not in inspect(engine).get_table_names()
    engine.dispose()
