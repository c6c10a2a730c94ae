"""examples: the file and line each imported example came from

Revision ID: 0008
Revises: 0007

An import used to renumber what it kept (file line 4, after a rejected line, became "Example 3"), and nothing
said where an example came from afterwards. `examples.source_file` is the uploaded file's name and
`examples.source_line` the line the example was read from (a CSV row: its first line); the editor and the dataset
page show them. Both are NULL for examples written in the editor and for those imported before this revision.
Added without rewriting the table (instant on SQLite and PostgreSQL), with no index: nothing looks examples up
by their source.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("source_file", sa.String(length=255), nullable=True))
    op.add_column("examples", sa.Column("source_line", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite >= 3.35), never a batch rebuild of `examples` (see 0004).
    op.execute("ALTER TABLE examples DROP COLUMN source_line")
    op.execute("ALTER TABLE examples DROP COLUMN source_file")
