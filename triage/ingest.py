"""Drive a source page by page: each page's items and its cursor commit in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from triage.context import Context
from triage.db import store
from triage.db.engine import transaction
from triage.sources import SOURCES
from triage.sources.base import Source, SourceBuilder, SourceDeps, format_cursor


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
        with transaction(sessions) as session:
            counts = store.upsert_items(session, page.items)
            new_cursor = page.cursor or cursor
            store.set_cursor(session, cursor_name, new_cursor, page.state)
            if advance_sync and new_cursor:
                _advance(session, sync_cursor_name(source), cursor, new_cursor, whole=not since)
        cursor = new_cursor
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
