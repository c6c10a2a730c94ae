"""scale-out: the workers table (who is alive, serving what, with a GPU?) and, on PostgreSQL, NOTIFY of job events

Revision ID: pg09
Revises: 0001

`workers` lets a worker without a GPU see whether a GPU worker is there to take local training jobs first
(app/worker/loop.py); rows are refreshed every heartbeat and removed on a clean exit.

On PostgreSQL, new job events and job status changes are announced with NOTIFY tuneboard_events (payload: the
job id). A trigger rather than a call in Python, so that every writer is covered (the worker's record_event, the
service that creates or cancels a job, a takeover) and the notification leaves exactly when the transaction
commits (PostgreSQL delivers NOTIFY on commit and drops it on rollback). Live event streams in any web process
wait on these instead of polling; see app/jobs/event_notify.py. SQLite has no notifications: nothing to do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "pg09"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "tuneboard_events"  # app.jobs.event_notify.CHANNEL


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False, server_default=""),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("gpu", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION tuneboard_notify_job_event() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.job_id);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION tuneboard_notify_job_status() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.id);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
        FOR EACH ROW EXECUTE FUNCTION tuneboard_notify_job_event()
    """)
    op.execute("""
        CREATE TRIGGER jobs_status_notify AFTER UPDATE OF status ON jobs
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION tuneboard_notify_job_status()
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_status_notify ON jobs")
        op.execute("DROP TRIGGER IF EXISTS job_events_notify ON job_events")
        op.execute("DROP FUNCTION IF EXISTS tuneboard_notify_job_status()")
        op.execute("DROP FUNCTION IF EXISTS tuneboard_notify_job_event()")
    op.drop_table("workers")
