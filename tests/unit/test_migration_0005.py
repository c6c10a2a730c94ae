"""Migration 0005 joins the two branches (0002–0004 and pg09): one head, reached from any older layout."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.tables.migrate import alembic_config, upgrade
from tests.conftest import database_at, make_settings

# Where databases made before 0005 can be: both old heads (the app upgraded to "heads"), or one of them.
OLD_LAYOUTS = [("0004", "pg09"), ("0004",), ("pg09",)]
HEAD = "0011"  # the newest revision: every later one descends from the merge


def current_heads(engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def test_the_history_has_exactly_one_head(tmp_path):
    script = ScriptDirectory.from_config(alembic_config(make_settings(tmp_path / "data")))
    assert script.get_heads() == [HEAD]


@pytest.mark.parametrize("layout", OLD_LAYOUTS, ids="+".join)
def test_a_database_at_the_old_heads_upgrades_to_the_one_head_keeping_its_rows(tmp_path, layout):
    config, engine = database_at(tmp_path / "data", layout[0])
    for revision in layout[1:]:
        command.upgrade(config, revision)
    assert current_heads(engine) == set(layout)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at) "
            "VALUES (1, 'kept', '', '2026-01-01', '2026-01-01')"
        )

    upgrade(make_settings(tmp_path / "data"))
    upgrade(make_settings(tmp_path / "data"))  # every server start runs it again: a no-op

    assert current_heads(engine) == {HEAD}
    tables = inspect(engine).get_table_names()
    assert "workers" in tables
    assert "rev" in {c["name"] for c in inspect(engine).get_columns("datasets")}
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT name FROM datasets").scalars().all() == ["kept"]
    engine.dispose()


def test_downgrading_the_merge_leaves_both_old_heads_and_the_whole_history_goes_down_and_up(tmp_path):
    config, engine = database_at(tmp_path / "data", "head")
    command.downgrade(config, "0004")  # undoes only the merge: pg09 stays, beside 0004
    assert current_heads(engine) == {"0004", "pg09"}
    command.upgrade(config, "head")
    assert current_heads(engine) == {HEAD}
    command.downgrade(config, "0001")
    assert current_heads(engine) == {"0001"}
    assert "workers" not in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    assert current_heads(engine) == {HEAD}
    engine.dispose()
