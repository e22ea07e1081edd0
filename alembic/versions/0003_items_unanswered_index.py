"""items: index for the digest's unanswered-questions count

`triage digest` counts open Stack Exchange questions with no answer asked before a cutoff. With
only the created_at index that count reads every older item; this index answers it from the
index alone.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_items_unanswered", ["source", "answer_count", "state", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_unanswered")
