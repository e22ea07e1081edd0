"""llm_calls: thinking tokens

Gemini models think before they answer and bill those tokens as output. `output_tokens` keeps
counting them (budgets and costs stay comparable); `thinking_tokens` says how many of them were
thinking, for `triage status` and the `[llm.gemini] thinking` setting.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("thinking_tokens", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_calls", schema=None) as batch_op:
        batch_op.drop_column("thinking_tokens")
