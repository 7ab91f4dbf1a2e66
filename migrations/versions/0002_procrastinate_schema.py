"""Install the procrastinate schema of the pinned version (3.10.0).

Replays procrastinate's own migration files up to 03.04.00 statement by statement.
A later procrastinate upgrade adds a revision replaying the files after 03.04.00.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

from infrastructure.queue.schema import migration_files, split_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UP_TO = "03.04.00"


def upgrade() -> None:
    # Some files add enum values that later files use, which Postgres allows only once
    # the addition is committed: replay outside the migration transaction, like psql.
    with op.get_context().autocommit_block():
        for path in migration_files(after=None, up_to=UP_TO):
            for statement in split_statements(path.read_text()):
                op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE fn record;
        BEGIN
            FOR fn IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                      JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%'
            LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || fn.signature || ' CASCADE';
            END LOOP;
        END $$
        """
    )
    for table in (
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_jobs",
        "procrastinate_workers",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for type_ in (
        "procrastinate_job_to_defer_v1",
        "procrastinate_job_event_type",
        "procrastinate_job_status",
    ):
        op.execute(f"DROP TYPE IF EXISTS {type_} CASCADE")
