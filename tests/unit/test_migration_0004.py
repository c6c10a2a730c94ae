"""Migration 0004 (report revisions): adding and removing the `rev` columns keeps every example."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from tests.conftest import database_at


def test_downgrade_drops_the_rev_columns_without_deleting_examples_and_upgrade_adds_them_back(tmp_path):
    config, engine = database_at(tmp_path / "data", "0004")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at, rev) "
            "VALUES (1, 'kept', '', '2026-01-01', '2026-01-01', 3)"
        )
        connection.exec_driver_sql(
            "INSERT INTO examples (dataset_id, position, messages, note, version, valid, n_errors, n_warnings, "
            "n_messages, content_hash, search_text, created_at, updated_at, rev) "
            "VALUES (1, 0, '[]', '', 1, 1, 0, 0, 0, 'h', '', '2026-01-01', '2026-01-01', 3)"
        )

    def counts() -> tuple[int, int]:
        with engine.connect() as connection:
            return tuple(
                connection.exec_driver_sql(
                    "SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM examples)"
                ).one()
            )

    command.downgrade(config, "0003")
    assert counts() == (1, 1)
    assert "rev" not in {c["name"] for c in inspect(engine).get_columns("examples")}
    assert "rev" not in {c["name"] for c in inspect(engine).get_columns("datasets")}
    command.upgrade(config, "0004")
    assert counts() == (1, 1)
    assert "ix_examples_dataset_rev" in {i["name"] for i in inspect(engine).get_indexes("examples")}
    engine.dispose()
