"""label_writes.item_updated_at: the issue's updated_at when triage wrote the label

Lets a later sync tell a human's removal (the issue changed after our write and the label is
gone) from a stale copy fetched before the write, comparing GitHub's clock with itself only.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label_writes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_updated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("label_writes", schema=None) as batch_op:
        batch_op.drop_column("item_updated_at")
