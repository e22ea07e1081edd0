"""neighbours: each open item's nearest other items, kept between duplicates runs

A duplicates run then searches only new or changed items and those whose neighbours changed or
closed, instead of every open item against every other. The neighbours the export showed as
`related` (kept until now in one cursor row's JSON) move into the table.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_CURSOR = "duplicates:related"


def upgrade() -> None:
    op.create_table(
        "neighbours",
        sa.Column("item_key", sa.String(length=300), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("other_key", sa.String(length=300), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_key"],
            ["items.key"],
            name=op.f("fk_neighbours_item_key_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_key", "rank", name=op.f("pk_neighbours")),
    )
    op.create_index("ix_neighbours_other_key", "neighbours", ["other_key"])
    bind = op.get_bind()
    state = bind.execute(
        sa.text("SELECT state FROM cursors WHERE name = :name"), {"name": OLD_CURSOR}
    ).scalar()
    if isinstance(state, str):
        state = json.loads(state)
    known = set(bind.execute(sa.text("SELECT key FROM items")).scalars())
    rows = [
        {"item_key": key, "rank": rank, "other_key": other, "similarity": float(sim)}
        for key, near in (state or {}).items()
        if key in known
        for rank, (other, sim) in enumerate(near)
    ]
    table = sa.table(
        "neighbours",
        sa.column("item_key", sa.String),
        sa.column("rank", sa.Integer),
        sa.column("other_key", sa.String),
        sa.column("similarity", sa.Float),
    )
    for start in range(0, len(rows), 1000):
        op.bulk_insert(table, rows[start : start + 1000])
    bind.execute(sa.text("DELETE FROM cursors WHERE name = :name"), {"name": OLD_CURSOR})


def downgrade() -> None:
    op.drop_index("ix_neighbours_other_key", table_name="neighbours")
    op.drop_table("neighbours")
