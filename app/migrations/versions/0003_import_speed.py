"""examples: a content hash that imports compute from JSON they already wrote; no index on it

Revision ID: 0003
Revises: 0002

Two costs of every imported row (bench/README.md, "Datasets"):

- The hash was of the example written a second time as JSON with every object's keys sorted. It is now of the
  JSON with each message's keys in the order role, content, then the others sorted (other objects' keys sorted,
  then a newline and `tools`): key order still does not matter, and most messages are stored in exactly that
  order, so an import hashes the text it stores. Stored hashes are recomputed here (and back on downgrade).
- The (dataset_id, content_hash) index took each row at a random place. No query looks examples up by hash:
  duplicate and leakage checks read a dataset's hashes through the other indexes and compare them in Python,
  and the token-count cache update finds its row by id. It only spared reading the rows when all hashes of a
  separate validation dataset are read (about 40 instead of 100 ms at 100,000 examples, a size validation sets
  do not reach in practice).

The hash functions are copied here, not imported, so that this revision keeps meaning what it meant.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _canonical_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return _sorted_keys(message)
    leading = [k for k in ("role", "content") if k in message]
    keys = leading + sorted(k for k in message if k not in ("role", "content"))
    return {key: _sorted_keys(message[key]) for key in keys}


def hash_0003(messages: Any, tools: Any) -> str:
    """The content hash from this revision on."""
    canonical = [_canonical_message(m) for m in messages] if isinstance(messages, list) else _sorted_keys(messages)
    text = json.dumps(canonical) + "\n" + json.dumps(tools, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_0001(messages: Any, tools: Any) -> str:
    """The content hash before this revision."""
    text = json.dumps({"messages": messages, "tools": tools}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _rehash(content_hash: Callable[[Any, Any], str]) -> None:
    connection = op.get_bind()
    examples = sa.table(
        "examples", sa.column("id"), sa.column("messages"), sa.column("tools"), sa.column("content_hash")
    )
    update = (
        examples.update().where(examples.c.id == sa.bindparam("row_id")).values(content_hash=sa.bindparam("new_hash"))
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(examples.c.id, examples.c.messages, examples.c.tools)
            .where(examples.c.id > last)
            .order_by(examples.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row_id, messages, tools in rows:
            # SQLite hands back the JSON text; PostgreSQL's driver has already parsed it.
            messages = json.loads(messages) if isinstance(messages, str) else messages
            tools = json.loads(tools) if isinstance(tools, str) else tools
            changes.append({"row_id": row_id, "new_hash": content_hash(messages, tools)})
        connection.execute(update, changes)
        last = rows[-1][0]


def upgrade() -> None:
    op.drop_index("ix_examples_dataset_hash", table_name="examples")
    _rehash(hash_0003)


def downgrade() -> None:
    _rehash(hash_0001)
    op.create_index("ix_examples_dataset_hash", "examples", ["dataset_id", "content_hash"])
