"""datasets and examples: preference (DPO) datasets beside supervised ones

Revision ID: 0009
Revises: 0008

A dataset is either supervised (OpenAI's chat shape, `{"messages": [...]}`) or preference (OpenAI's DPO shape,
`{"input": {"messages": [...], "tools": [...]}, "preferred_output": [...], "non_preferred_output": [...]}`).
`datasets.kind` says which ('supervised' for every dataset already there). A preference example keeps its input
conversation in the columns a supervised one uses (`messages`, `tools`) so that search, hashing, splitting and the
editor's conversation view serve both, and its two answers in `examples.preferred_output` and
`examples.non_preferred_output` (JSON lists of assistant messages, NULL on supervised examples). Added without
rewriting the tables (instant on SQLite and PostgreSQL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("kind", sa.String(length=20), nullable=False, server_default="supervised"))
    op.add_column("examples", sa.Column("preferred_output", sa.JSON(), nullable=True))
    op.add_column("examples", sa.Column("non_preferred_output", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite >= 3.35), never a batch rebuild of `examples` (see 0004).
    op.execute("ALTER TABLE examples DROP COLUMN non_preferred_output")
    op.execute("ALTER TABLE examples DROP COLUMN preferred_output")
    op.execute("ALTER TABLE datasets DROP COLUMN kind")
