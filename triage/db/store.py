"""Idempotent writes and the queries shared by commands: never let an older copy win."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from triage.db.schema import Cursor, Item
from triage.sources.base import ItemIn


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_ITEM_COLUMNS = [c.name for c in Item.__table__.columns]
_UPDATABLE = [c for c in _ITEM_COLUMNS if c != "key"]


_UPSERTS: dict[str, Any] = {}


def _upsert_statement(dialect: str) -> Any:
    """One constant statement per dialect, so SQLAlchemy compiles it once and executes many."""
    if dialect not in _UPSERTS:
        table = Item.__table__
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={c: stmt.excluded[c] for c in _UPDATABLE},
            where=stmt.excluded.updated_at >= table.c.updated_at,
        )
    return _UPSERTS[dialect]


def upsert_items(session: Session, items: Sequence[ItemIn]) -> dict[str, int]:
    """Insert or update items; a row is only replaced by a copy at least as new as itself."""
    if not items:
        return {"new": 0, "updated": 0, "unchanged": 0}
    latest: dict[str, ItemIn] = {}
    for item in items:  # a page may repeat an item; keep its newest copy
        seen = latest.get(item.key)
        if seen is None or item.updated_at >= seen.updated_at:
            latest[item.key] = item
    existing = dict(
        session.execute(select(Item.key, Item.updated_at).where(Item.key.in_(list(latest)))).all()
    )
    now = utcnow()
    rows = []
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    for item in latest.values():
        old = existing.get(item.key)
        if old is None:
            counts["new"] += 1
        elif item.updated_at > old:
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
        row = item.model_dump()
        row["content_hash"] = item.content_hash
        row["fetched_at"] = now
        rows.append(row)
    conn = session.connection()
    conn.execute(_upsert_statement(conn.dialect.name), rows)
    return counts


def get_cursor(session: Session, name: str) -> Cursor | None:
    return session.get(Cursor, name)


def set_cursor(
    session: Session, name: str, value: str | None, state: dict[str, Any] | None = None
) -> None:
    row = session.get(Cursor, name)
    if row is None:
        session.add(Cursor(name=name, value=value, state=state or {}, updated_at=utcnow()))
    else:
        row.value = value
        row.state = state or {}
        row.updated_at = utcnow()


def all_cursors(session: Session) -> list[Cursor]:
    return list(session.scalars(select(Cursor).order_by(Cursor.name)))


def count_items(session: Session) -> dict[str, int]:
    rows = session.execute(select(Item.source, func.count()).group_by(Item.source)).all()
    return {source: n for source, n in rows}


def iter_items(
    session: Session, batch: int = 1000, keys: Iterable[str] | None = None
) -> Iterator[Item]:
    """Stream items in key order without holding them all in memory."""
    stmt = select(Item).order_by(Item.key).execution_options(yield_per=batch)
    if keys is not None:
        stmt = stmt.where(Item.key.in_(list(keys)))
    yield from session.scalars(stmt)
