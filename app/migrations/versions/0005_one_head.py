"""merge: the scale-out branch (pg09) and the dataset branch (0002–0004) meet again; one head from here on

Revision ID: 0005
Revises: 0004, pg09

pg09 (the workers table, and on PostgreSQL the NOTIFY triggers) was written beside 0002–0004, both on top of
0001, so the history had two heads and the app upgraded to "heads". This revision changes no schema: it joins
the two branches so that `alembic upgrade head` (and the next revision) has one parent chain. A database at
both old heads moves here at once; one at only 0004 or only pg09 first gets the other branch's revisions, so
every existing database, SQLite or PostgreSQL, ends at the same schema.
"""

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | Sequence[str] | None = ("0004", "pg09")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
