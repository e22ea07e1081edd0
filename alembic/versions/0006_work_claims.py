"""work_units: replicas share a run's work

A sync run's sources and an analyze run's batches become rows that replicas on one PostgreSQL
database claim with a lease (`SELECT ... FOR UPDATE SKIP LOCKED`), so two replicas finish a
backlog about twice as fast and a dead replica's claim expires.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_units",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("run", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=300), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("replica", sa.String(length=200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_units")),
        sa.UniqueConstraint("job", "run", "unit", name="uq_work_units_job_run_unit"),
    )
    op.create_index("ix_work_units_job_state", "work_units", ["job", "state"])


def downgrade() -> None:
    op.drop_index("ix_work_units_job_state", table_name="work_units")
    op.drop_table("work_units")
