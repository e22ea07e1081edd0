"""items: GitHub keys in one spelling (owner/repo are case-insensitive on GitHub)

`triage backfill github Octo/Demo` after `octo/demo` stored every issue twice. Keys, scopes and
cursor names of GitHub sources are now lower case. Rows stored twice are merged: the newest copy
(by updated_at, then fetched_at) is kept under the lower-case key, and every analysis, theme
membership, duplicate link, label write and correction of either copy points at it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (table, key column, the other columns it is unique with; None: not unique)
CHILDREN: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("analyses", "item_key", None),
    ("theme_items", "item_key", ()),
    ("embeddings", "item_key", ()),
    ("label_writes", "item_key", ("label",)),
    ("label_corrections", "item_key", ("label",)),
    ("duplicates", "key_a", ("key_b",)),
    ("duplicates", "key_b", ("key_a",)),
]


def _table(conn: sa.Connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


ANALYSIS_UNIQUE = ("content_hash", "provider", "model", "prompt_version")


def _same_analyses(conn: sa.Connection, old: str, new: str) -> None:
    """An analysis both copies have (same text, provider, model, prompt) is kept once."""
    analyses, writes = _table(conn, "analyses"), _table(conn, "label_writes")
    cols = [analyses.c[c] for c in ANALYSIS_UNIQUE]
    kept = {
        tuple(r[1:]): r[0]
        for r in conn.execute(sa.select(analyses.c.id, *cols).where(analyses.c.item_key == new))
    }
    for row in conn.execute(
        sa.select(analyses.c.id, *cols).where(analyses.c.item_key == old)
    ).all():
        twin = kept.get(tuple(row[1:]))
        if twin is not None:
            conn.execute(
                writes.update().where(writes.c.analysis_id == row[0]).values(analysis_id=twin)
            )
            conn.execute(analyses.delete().where(analyses.c.id == row[0]))


def _repoint(conn: sa.Connection, old: str, new: str) -> None:
    """Every row that names item `old` names `new`; a row `new` already has is dropped."""
    _same_analyses(conn, old, new)
    for name, column, unique_with in CHILDREN:
        t = _table(conn, name)
        col = t.c[column]
        if unique_with is not None:
            others = [t.c[c] for c in unique_with]
            if not others:  # the key alone is unique: the merged item keeps its own row
                if conn.execute(sa.select(col).where(col == new)).first() is not None:
                    conn.execute(t.delete().where(col == old))
                conn.execute(t.update().where(col == old).values({column: new}))
                continue
            taken = {tuple(r) for r in conn.execute(sa.select(*others).where(col == new))}
            for row in conn.execute(sa.select(*others).where(col == old)).all():
                if tuple(row) in taken or (name == "duplicates" and new in tuple(row)):
                    conn.execute(
                        t.delete().where(
                            col == old, *(o == v for o, v in zip(others, row, strict=True))
                        )
                    )
        conn.execute(t.update().where(col == old).values({column: new}))


def _merge_items(conn: sa.Connection) -> None:
    items = _table(conn, "items")
    rows = conn.execute(
        sa.select(items.c.key, items.c.updated_at, items.c.fetched_at).where(
            items.c.source == "github"
        )
    ).all()
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.key.lower()].append(row)
    values = [c for c in items.c if c.name != "key"]
    for canonical, group in groups.items():
        if len(group) == 1 and group[0].key == canonical:
            continue
        keeper = max(group, key=lambda r: (r.updated_at, r.fetched_at, r.key == canonical)).key
        keys = {r.key for r in group}
        if canonical not in keys:
            conn.execute(
                items.insert().from_select(
                    ["key", *(c.name for c in values)],
                    sa.select(sa.literal(canonical), *values).where(items.c.key == keeper),
                )
            )
        elif keeper != canonical:
            newest = conn.execute(sa.select(*values).where(items.c.key == keeper)).one()
            conn.execute(
                items.update().where(items.c.key == canonical).values(dict(newest._mapping))
            )
        for key in keys - {canonical}:
            _repoint(conn, key, canonical)
            conn.execute(items.delete().where(items.c.key == key))
    conn.execute(
        items.update()
        .where(items.c.source == "github", items.c.scope != sa.func.lower(items.c.scope))
        .values(scope=sa.func.lower(items.c.scope))
    )


def _cursor_name(name: str) -> str:
    """`sync:github:Octo/Demo` -> `sync:github:octo/demo` (a backfill's `@since` kept as is)."""
    head, sep, rest = name.partition("github:")
    if not sep:
        return name
    repo, at, since = rest.partition("@")
    return f"{head}github:{repo.lower()}{at}{since}"


def _merge_cursors(conn: sa.Connection) -> None:
    cursors = _table(conn, "cursors")
    rows = conn.execute(sa.select(cursors.c.name, cursors.c.value)).all()
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[_cursor_name(row.name)].append(row)
    for canonical, group in groups.items():
        if len(group) == 1 and group[0].name == canonical:
            continue
        # The cursor furthest along: each copy listed everything up to its own value.
        best = max(group, key=lambda r: (r.value or "", r.name == canonical))
        for row in group:
            if row.name != best.name:
                conn.execute(cursors.delete().where(cursors.c.name == row.name))
        if best.name != canonical:
            conn.execute(cursors.update().where(cursors.c.name == best.name).values(name=canonical))


def _batch_requests(conn: sa.Connection) -> None:
    """Batch Mode jobs name their items by key: collected results must find them."""
    jobs = _table(conn, "batch_jobs")
    for job_id, requests in conn.execute(sa.select(jobs.c.id, jobs.c.requests)).all():
        fixed = [
            [k.lower() if isinstance(k, str) and k.startswith("github:") else k for k in keys]
            for keys in (requests or [])
        ]
        if fixed != (requests or []):
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(requests=fixed))


def upgrade() -> None:
    conn = op.get_bind()
    _merge_items(conn)
    _merge_cursors(conn)
    _batch_requests(conn)
    # A local model trained under another spelling of a repository retrains under the new one.
    models = _table(conn, "local_models")
    conn.execute(models.delete().where(models.c.scope != sa.func.lower(models.c.scope)))


def downgrade() -> None:
    # Merged copies cannot be told apart again; the lower-case keys stay valid for 0003.
    pass
