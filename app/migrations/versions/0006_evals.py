"""evals: evals, their runs (a second worker queue), graded items, pairwise reviews; jobs.eval_id

Revision ID: 0006
Revises: 0005

An eval holds graders (OpenAI's testing_criteria) and where its items come from; a run evaluates one model on
them and is claimed by a worker like a job (status, worker_id, heartbeat_at, attempts). Each graded item is a row,
written as it finishes, so a run taken over after a crash skips what is done. A job may carry an eval (eval_id) to
evaluate each checkpoint as it is written. The column is added without rewriting `jobs`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "evals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("data_source_config", sa.JSON(), nullable=False),
        sa.Column("testing_criteria", sa.JSON(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("split", sa.String(20), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
    )
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("eval_id", sa.String(64), sa.ForeignKey("evals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("data_source", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("output_dataset_id", sa.Integer(), sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
        sa.Column("checkpoint_id", sa.String(64), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("n_done", sa.Integer(), nullable=False),
        sa.Column("result_counts", sa.JSON(), nullable=True),
        sa.Column("per_testing_criteria_results", sa.JSON(), nullable=True),
        sa.Column("per_model_usage", sa.JSON(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        _ts("heartbeat_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("created_at", False),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("updated_at", False),
    )
    op.create_index("ix_eval_runs_status", "eval_runs", ["status"])
    op.create_index("ix_eval_runs_job_id", "eval_runs", ["job_id"])
    op.create_table(
        "eval_run_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        _ts("created_at", False),
        sa.UniqueConstraint("run_id", "item_index", name="uq_eval_run_items_run_index"),
    )
    op.create_table(
        "pairwise_reviews",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_a_id", sa.String(64), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_b_id", sa.String(64), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("judge", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("created_at", False),
    )
    op.create_table(
        "pairwise_votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.String(64), sa.ForeignKey("pairwise_reviews.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("a_first", sa.Boolean(), nullable=False),
        sa.Column("choice", sa.String(10), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        _ts("created_at", False),
        sa.UniqueConstraint("review_id", "item_index", name="uq_pairwise_votes_review_index"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN with its reference in place: SQLite allows it for a nullable column, and no table is rebuilt
        # (Alembic would want a batch copy of `jobs` to add the constraint apart).
        op.execute("ALTER TABLE jobs ADD COLUMN eval_id VARCHAR(64) REFERENCES evals (id) ON DELETE SET NULL")
    else:
        op.add_column("jobs", sa.Column("eval_id", sa.String(64), nullable=True))
        op.create_foreign_key("jobs_eval_id_fkey", "jobs", "evals", ["eval_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("jobs_eval_id_fkey", "jobs", type_="foreignkey")
    op.execute("ALTER TABLE jobs DROP COLUMN eval_id")
    op.drop_table("pairwise_votes")
    op.drop_table("pairwise_reviews")
    op.drop_table("eval_run_items")
    op.drop_index("ix_eval_runs_job_id", table_name="eval_runs")
    op.drop_index("ix_eval_runs_status", table_name="eval_runs")
    op.drop_table("eval_runs")
    op.drop_table("evals")
