"""Migration 0007 clears the cached token counts of examples with tools, calls or tool results, and only those."""

from __future__ import annotations

import json

from alembic import command

from tests.conftest import database_at

COUNTS = json.dumps({"o200k_base": {"total": 12, "assistant": 4, "trained": 4}})
PLAIN = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
CALLING = [
    {"role": "user", "content": "Where is order 12?"},
    {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"id": "12"}'}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    {"role": "assistant", "content": "It has shipped."},
]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def test_only_examples_with_tools_lose_their_cached_counts(tmp_path):
    config, engine = database_at(tmp_path / "data", "0006")
    rows = [(1, PLAIN, None), (2, CALLING, None), (3, PLAIN, TOOLS)]
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at) "
            "VALUES (1, 'd', '', '2026-01-01', '2026-01-01')"
        )
        for example_id, messages, tools in rows:
            connection.exec_driver_sql(
                "INSERT INTO examples (id, dataset_id, position, messages, tools, note, version, valid, n_errors, "
                "n_warnings, n_messages, content_hash, search_text, token_counts, created_at, updated_at) "
                "VALUES (?, 1, ?, ?, ?, '', 1, 1, 0, 0, 2, 'h', '', ?, '2026-01-01', '2026-01-01')",
                (example_id, example_id, json.dumps(messages), json.dumps(tools), COUNTS),
            )
    command.upgrade(config, "0007")
    with engine.connect() as connection:
        counts = dict(connection.exec_driver_sql("SELECT id, token_counts FROM examples ORDER BY id").fetchall())
    assert counts[1] is not None and json.loads(counts[1]) == json.loads(COUNTS)
    assert counts[2] is None and counts[3] is None
    engine.dispose()
