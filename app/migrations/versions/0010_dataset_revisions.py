"""dataset_revisions: a dataset's history of bulk fixes, each with the before-state that undoes it

Revision ID: 0010
Revises: 0009

Each bulk fix (tool_calls arguments as JSON strings, trailing whitespace, masking personal data, a near-duplicate
cluster kept to one) is one row: the fix, the sentence that said what it did, how many examples it changed and
deleted, and `before`, a JSON list with each touched example's columns as they were (enough to restore them
exactly) and the version the fix left it at (an undo refuses if the example changed since). A new table: nothing
existing is rewritten.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("fix", sa.String(40), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("n_changed", sa.Integer(), nullable=False),
        sa.Column("n_deleted", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dataset_revisions_dataset_id", "dataset_revisions", ["dataset_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_revisions_dataset_id", table_name="dataset_revisions")
    op.drop_table("dataset_revisions")
