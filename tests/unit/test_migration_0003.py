"""Migration 0003: stored content hashes follow the new definition on upgrade and the old one on downgrade."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from app.datasets.validation.checks import content_hash
from tests.conftest import database_at

MIGRATION = Path(__file__).resolve().parents[2] / "app" / "migrations" / "versions" / "0003_import_speed.py"
RECORDS = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 1}]},
    {"messages": [{"content": "Café ☕", "role": "user"}], "tools": [{"type": "function", "function": {"name": "f"}}]},
    {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ]
    },
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "part"}]}, "not a message"]},
]


def old_hash(record) -> str:
    text = json.dumps(
        {"messages": record["messages"], "tools": record.get("tools")}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def migration():
    spec = importlib.util.spec_from_file_location("migration_0003", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("record", RECORDS)
def test_the_migration_hashes_exactly_as_the_app_does(migration, record):
    assert migration.hash_0003(record["messages"], record.get("tools")) == content_hash(record)
    assert migration.hash_0001(record["messages"], record.get("tools")) == old_hash(record)


def test_upgrade_rehashes_stored_examples_and_downgrade_restores_the_old_hashes(tmp_path):
    config, engine = database_at(tmp_path / "data", "0002")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at) "
            "VALUES (1, 'old', '', '2026-01-01', '2026-01-01')"
        )
        for position, record in enumerate(RECORDS):
            connection.exec_driver_sql(
                "INSERT INTO examples (dataset_id, position, messages, tools, note, version, valid, n_errors, "
                "n_warnings, n_messages, content_hash, search_text, created_at, updated_at) "
                "VALUES (1, ?, ?, ?, '', 1, 1, 0, 0, 1, ?, '', '2026-01-01', '2026-01-01')",
                (position, json.dumps(record["messages"]), json.dumps(record.get("tools")), old_hash(record)),
            )

    def stored_hashes() -> list[str]:
        with engine.connect() as connection:
            return [r[0] for r in connection.exec_driver_sql("SELECT content_hash FROM examples ORDER BY position")]

    command.upgrade(config, "0003")
    assert stored_hashes() == [content_hash(r) for r in RECORDS]
    assert "ix_examples_dataset_hash" not in {i["name"] for i in inspect(engine).get_indexes("examples")}
    command.downgrade(config, "0002")
    assert stored_hashes() == [old_hash(r) for r in RECORDS]
    assert "ix_examples_dataset_hash" in {i["name"] for i in inspect(engine).get_indexes("examples")}
    engine.dispose()
