"""examples.near_signature: each example's MinHash signature, stored with its row

Revision ID: 0011
Revises: 0010

The report's near-duplicate pass read every example's text and signed it (~40 MB of words per 100,000 examples),
where the exact-duplicate pass reads a 64-character hash per row. The import now signs each example beside its
token counts (app.datasets.import_tokens) and stores the signature here: a format mark, the first 8 bytes of the
content hash it was made from, then SIGNATURE_SIZE little-endian uint32 values (app.datasets.quality.
stored_signatures). A signature whose tag does not match the row's content hash is stale and recomputed, never
trusted. Existing rows stay NULL (signed when the report first needs them, as before). Added without rewriting
the table (instant on SQLite and PostgreSQL); no index: nothing looks examples up by their signature.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("near_signature", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite >= 3.35), never a batch rebuild of `examples` (see 0004).
    op.execute("ALTER TABLE examples DROP COLUMN near_signature")
