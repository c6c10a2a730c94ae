"""report: per-dataset revision counter, stamped on the example rows each change writes

Revision ID: 0004
Revises: 0003

The dataset Report keeps each dataset's per-example columns in memory and, on the next request, re-reads only
the rows written since (app/datasets/validation/report_rows.py). `datasets.rev` counts the dataset's changes;
a service that writes example rows first bumps it (app.datasets.datasets.touch_dataset, which also takes the
dataset row's write lock, so revisions reach readers in commit order) and stamps the rows it writes with the
new value. `examples.rev` is NULL for rows written by code that does not stamp: the report always re-reads
those, so such a writer costs speed, never correctness. The index finds a dataset's recent rows without
reading the others. Both columns are added without rewriting the table (instant on SQLite and PostgreSQL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("rev", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("examples", sa.Column("rev", sa.Integer(), nullable=True))
    op.create_index("ix_examples_dataset_rev", "examples", ["dataset_id", "rev"])


def downgrade() -> None:
    op.drop_index("ix_examples_dataset_rev", table_name="examples")
    # A plain DROP COLUMN (SQLite >= 3.35 has it), never a batch rebuild: rebuilding `datasets` deletes it and
    # re-creates it, and the foreign key's ON DELETE CASCADE would empty `examples` on the way.
    op.execute("ALTER TABLE examples DROP COLUMN rev")
    op.execute("ALTER TABLE datasets DROP COLUMN rev")
