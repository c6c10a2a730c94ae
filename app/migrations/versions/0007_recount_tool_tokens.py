"""data: examples with tools, tool calls or tool results get their token counts again

Revision ID: 0007
Revises: 0006

Token counts are cached per example (`examples.token_counts`, filled lazily). They used to count `tools` and
`tool_calls` as their JSON text; they now count them as the engine renders them (the tool definitions block, each
call's tag, each result's tag: app/engine/tool_format.py). Counts cached under the old rule are cleared here so the
report counts those examples afresh; other examples keep theirs. A revision with no schema change: the same SQL on
SQLite and PostgreSQL (JSON read as text). A cleared count is only recomputed, so matching a little too widely
(the word "tool" in quotes inside a message) costs a recount, never a wrong figure.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE examples SET token_counts = NULL WHERE token_counts IS NOT NULL AND ("
        "(tools IS NOT NULL AND CAST(tools AS TEXT) <> 'null') "
        "OR CAST(messages AS TEXT) LIKE '%\"tool_calls\"%' "
        "OR CAST(messages AS TEXT) LIKE '%\"tool\"%')"
    )


def downgrade() -> None:
    pass  # the counts are a cache: nothing to restore
