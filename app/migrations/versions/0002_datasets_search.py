"""datasets: indexes for the dataset page's filtered views

Revision ID: 0002
Revises: 0001

The dataset page lists 50 examples in position order, optionally filtered by split or validity. With these
indexes SQLite walks the matching rows already in order instead of reading every example row to filter and
sort them (the difference between a few and a few hundred milliseconds at 100,000 examples). Imports append
at the end of both indexes (positions only grow), so they cost little on insert.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_examples_dataset_split_position", "examples", ["dataset_id", "split", "position"])
    op.create_index("ix_examples_dataset_valid_position", "examples", ["dataset_id", "valid", "position"])


def downgrade() -> None:
    op.drop_index("ix_examples_dataset_valid_position", table_name="examples")
    op.drop_index("ix_examples_dataset_split_position", table_name="examples")
