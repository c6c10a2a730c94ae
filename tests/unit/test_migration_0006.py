"""Migration 0006 adds the evals tables and jobs.eval_id: the migrated schema is what the tables declare."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from tests.conftest import database_at

EVAL_TABLES = {"evals", "eval_runs", "eval_run_items", "pairwise_reviews", "pairwise_votes"}


def _differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diffs = compare_metadata(context, SQLModel.metadata)
    # Only the new tables and jobs' new column: older tables have their own history of small, known differences.
    touched = EVAL_TABLES | {"jobs"}
    return [d for d in diffs if _table_of(d) in touched and not _is_known_old_difference(d)]


def _table_of(diff) -> str | None:
    change = diff[0] if isinstance(diff, list) else diff
    for part in change[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None:
            return table.name
        if isinstance(part, str) and name is None:
            return part
    return None


def _is_known_old_difference(diff) -> bool:
    # jobs' older indexes are outside this migration; its foreign keys are checked through PRAGMA below, because
    # SQLAlchemy's SQLite reflection misses the ON DELETE of a column added with ALTER TABLE.
    change = diff[0] if isinstance(diff, list) else diff
    return change[0] in ("remove_index", "add_index", "remove_fk", "add_fk") and _table_of(diff) == "jobs"


def test_the_evals_tables_and_the_job_column_match_the_declared_tables(tmp_path):
    _, engine = database_at(tmp_path / "data", "head")
    tables = set(inspect(engine).get_table_names())
    assert tables >= EVAL_TABLES
    assert "eval_id" in {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert _differences(engine) == []
    with engine.connect() as connection:
        keys = connection.exec_driver_sql("PRAGMA foreign_key_list(jobs)").fetchall()
    assert ("evals", "eval_id", "id", "SET NULL") in {(k[2], k[3], k[4], k[6]) for k in keys}
    engine.dispose()


def test_downgrading_0006_removes_the_evals_tables_and_keeps_the_jobs(tmp_path):
    config, engine = database_at(tmp_path / "data", "head")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO jobs (id, provider, status, model, hyperparameters, result_files, cancel_requested, "
            "attempts, created_at, updated_at) VALUES ('ftjob-kept', 'local', 'queued', 'm', '{}', '[]', 0, 0, "
            "'2026-01-01', '2026-01-01')"
        )
    command.downgrade(config, "0005")
    assert not (set(inspect(engine).get_table_names()) & EVAL_TABLES)
    assert "eval_id" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT id FROM jobs").scalars().all() == ["ftjob-kept"]
    command.upgrade(config, "head")
    assert set(inspect(engine).get_table_names()) >= EVAL_TABLES
    engine.dispose()
