"""Drive a source page by page: each page's items and its cursor commit in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from triage.context import Context
from triage.db import store
from triage.db.engine import transaction
from triage.logs import get_logger
from triage.sources import SOURCES
from triage.sources.base import ItemIn, Source, SourceBuilder, SourceDeps, format_cursor

log = get_logger("triage.ingest")


@dataclass
class RunStats:
    source: str
    pages: int = 0
    requests: int = 0
    items: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    quota_remaining: int | None = None
    cursor: str | None = None
    seconds: float = 0.0
    done: bool = False
    # The source answered "not modified" (a 304): nothing fetched, the cursor as it was.
    not_modified: bool = False
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


ProgressHook = Callable[[RunStats], None]


def source_builders(deps: SourceDeps) -> list[SourceBuilder]:
    """One builder per configured repo (or `org/*`) and tag, so a failing one spoils only itself."""
    return [builder for spec in SOURCES.values() for builder in spec.builders(deps)]


def sync_cursor_name(source: Source) -> str:
    return f"sync:{source.name}"


def first_sync_start(deps: Context, source: Source, cursor_name: str) -> datetime | None:
    """A source's first sync starts at its section's `since` ("90d"); later ones at the cursor."""
    from triage.windows import parse_start

    spec = SOURCES.get(source.name.partition(":")[0])
    if spec is None:
        return None
    section = getattr(deps.config, spec.config_section)
    with deps.sessions() as session:
        if store.get_cursor(session, cursor_name) is not None:
            return None
    return parse_start(str(getattr(section, "since", "")))


def backfill_cursor_name(source: Source, since: datetime | None) -> str:
    return f"backfill:{source.name}" + (f"@{format_cursor(since)}" if since else "")


def run(
    sessions: sessionmaker[Session],
    source: Source,
    cursor_name: str,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    on_page: ProgressHook | None = None,
    advance_sync: bool = False,
) -> RunStats:
    """Fetch from the stored cursor onwards; safe to interrupt and re-run at any point."""
    stats = RunStats(source=source.name)
    started = time.monotonic()
    with sessions() as session:
        row = store.get_cursor(session, cursor_name)
        cursor, state = (row.value, dict(row.state)) if row else (None, {})
    state.pop("done", None)
    stats.cursor = cursor
    for page in source.pages(cursor, since, state):
        new_cursor = page.cursor or cursor

        def advance(
            session: Session,
            page_state: dict[str, Any] = page.state,
            start: str | None = cursor,
            end: str | None = new_cursor,
        ) -> None:
            store.set_cursor(session, cursor_name, end, page_state)
            if advance_sync and end:
                _advance(session, sync_cursor_name(source), start, end, whole=not since)

        try:
            counts = _commit_page(sessions, page.items, advance)
        except _Unstorable:
            # One item the database refuses must not block the page: store the others one by one.
            stored = [item for item in page.items if _store_one(sessions, item)]
            page.skipped += len(page.items) - len(stored)
            _commit_page(sessions, [], advance)
            counts = {"new": len(stored), "updated": 0, "unchanged": 0}
            page.items = stored
        cursor = new_cursor
        stats.not_modified = stats.not_modified or page.not_modified
        _count(stats, page.requests, len(page.items), page.skipped, counts)
        stats.cursor, stats.quota_remaining = cursor, page.quota_remaining
        stats.seconds = time.monotonic() - started
        if on_page:
            on_page(stats)
        if limit is not None and stats.items >= limit:
            break
    else:
        stats.done = True
        with transaction(sessions) as session:
            row = store.get_cursor(session, cursor_name)
            store.set_cursor(
                session, cursor_name, cursor, {**(row.state if row else {}), "done": True}
            )
    stats.seconds = time.monotonic() - started
    return stats


class _Unstorable(Exception):
    """The database refused a page's items (not the database being unreachable or full)."""


def _refused(exc: StatementError) -> bool:
    return not isinstance(exc, (OperationalError, InterfaceError))


def _commit_page(
    sessions: sessionmaker[Session], items: list[ItemIn], advance: Callable[[Session], None]
) -> dict[str, int]:
    """A page's items and the cursor it advances to, in one transaction."""
    try:
        with transaction(sessions) as session:
            counts = store.upsert_items(session, items)
            advance(session)
    except StatementError as exc:
        if _refused(exc):
            raise _Unstorable from exc
        raise
    return counts


def _store_one(sessions: sessionmaker[Session], item: ItemIn) -> bool:
    try:
        with transaction(sessions) as session:
            store.upsert_items(session, [item])
    except StatementError as exc:
        if not _refused(exc):
            raise
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        log.warning("item not stored; skipped", item=item.key, reason=reason[:200])
        return False
    return True


def _count(
    stats: RunStats, requests: int, items: int, skipped: int, counts: dict[str, int]
) -> None:
    stats.pages += 1
    stats.requests += requests
    stats.items += items
    stats.skipped += skipped
    stats.new += counts["new"]
    stats.updated += counts["updated"]
    stats.unchanged += counts["unchanged"]


def _advance(session: Session, name: str, start: str | None, end: str, whole: bool) -> None:
    """Move the sync cursor to `end` once a backfill page covered everything up to it.

    A backfill from the beginning covers all that sync has yet to see. One from a date does not
    (GitHub: changes before the date; Stack Exchange, where the date bounds creation: activity on
    older questions), so it moves the sync cursor only where sync has no position of its own yet
    or where this backfill put it (its previous page ended at `start`).
    """
    row = store.get_cursor(session, name)
    if row is not None and not whole and row.value != start:
        return
    if row is None or (row.value or "") < end:
        store.set_cursor(session, name, end, row.state if row else {})
