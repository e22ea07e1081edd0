from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.schema import Item
from triage.sources.base import ItemIn

T0 = datetime(2025, 1, 1, 12, 0, 0)


def item(n: int, title: str = "t", updated: datetime = T0, **kw: object) -> ItemIn:
    return ItemIn(
        key=f"github:o/r#{n}",
        source="github",
        scope="o/r",
        number=n,
        url=f"https://github.com/o/r/issues/{n}",
        title=title,
        body="b",
        created_at=T0,
        updated_at=updated,
        **kw,  # type: ignore[arg-type]
    )


def test_upsert_is_idempotent_and_never_goes_back(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        assert store.upsert_items(s, [item(1), item(2)]) == {"new": 2, "updated": 0, "unchanged": 0}
    with transaction(sessions) as s:
        counts = store.upsert_items(s, [item(1, "newer", T0 + timedelta(hours=1)), item(2)])
        assert counts == {"new": 0, "updated": 1, "unchanged": 1}
    with transaction(sessions) as s:  # an older copy arrives late: it must not win
        store.upsert_items(s, [item(1, "stale", T0)])
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2
        row = s.get(Item, "github:o/r#1")
        assert row is not None and row.title == "newer"
        assert row.content_hash == item(1, "newer").content_hash
    engine.dispose()


def test_same_item_twice_in_one_page_keeps_newest(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        store.upsert_items(s, [item(1, "new", T0 + timedelta(1)), item(1, "old", T0)])
    with sessions() as s:
        row = s.get(Item, "github:o/r#1")
        assert row is not None and row.title == "new"


def test_timezone_aware_times_are_stored_as_utc(engine) -> None:  # type: ignore[no-untyped-def]
    from datetime import timezone

    aware = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        store.upsert_items(s, [item(1, updated=aware)])
    with sessions() as s:
        row = s.get(Item, "github:o/r#1")
        assert row is not None and row.updated_at == datetime(2025, 1, 1, 12, 0)


def test_cursor_roundtrip(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        store.set_cursor(s, "sync:github:o/r", "2025-01-01T00:00:00Z", {"page": 2})
    with transaction(sessions) as s:
        store.set_cursor(s, "sync:github:o/r", "2025-01-02T00:00:00Z")
    with sessions() as s:
        c = store.get_cursor(s, "sync:github:o/r")
        assert c is not None and c.value == "2025-01-02T00:00:00Z" and c.state == {}
