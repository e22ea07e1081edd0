"""Which period a digest covers: its window, stretched back to the previous digest's end.

A digest to a destination covers at least what was stored since the previous digest there, and
the first one covers everything stored, so the digest after a backfill is never empty of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.db.schema import Delivery, Item
from triage.windows import Window, align


@dataclass(frozen=True)
class Span:
    window: Window
    note: str  # said in the digest's heading; "" when the window is the configured one


@dataclass(frozen=True)
class Stored:
    """What the database holds, for an empty window to point at."""

    total: int
    newest: datetime | None

    def hint(self, end: datetime, what: str) -> str:
        """'12 items stored, the newest from 2025-01-02: try `triage digest --window 40d`'."""
        if not self.total or self.newest is None:
            return "nothing stored yet: `triage backfill` or `triage sync` brings items in"
        days = max(1, math.ceil((end - self.newest) / timedelta(days=1)) + 1)
        return (
            f"{self.total:,} item{'s' if self.total != 1 else ''} stored, the newest from"
            f" {self.newest:%Y-%m-%d}: try `{what} --window {days}d`"
        )


def stored(session: Session) -> Stored:
    total, newest = session.execute(select(func.count(Item.key), func.max(Item.created_at))).one()
    return Stored(int(total or 0), newest)


def covering(session: Session, window: Window, sink: str | None) -> Span:
    """The window, reaching back to the end of the previous digest to `sink` (None: any)."""
    where = [Delivery.window_end <= window.end]
    if sink is not None:
        where.append(Delivery.sink == sink)
    last = session.execute(
        select(Delivery.window_start, Delivery.window_end)
        .where(*where)
        .order_by(Delivery.window_end.desc(), Delivery.window_start)
        .limit(1)
    ).first()
    if last is not None:
        start, end = last
        if end == window.end and start < window.start:
            # This period went out already: the same window again, so it is delivered once.
            return Span(Window(window.spec, start, window.end), f"{start:%Y-%m-%d %H:%M}")
        if end < window.start:
            note = f"the previous digest at {end:%Y-%m-%d %H:%M}"
            return Span(Window(window.spec, end, window.end), note)
        return Span(window, "")
    earliest = session.scalar(select(func.min(Item.created_at)))
    if earliest is None or earliest >= window.start:
        return Span(window, "")
    start = align(earliest, timedelta(hours=1))
    note = "everything stored, as the first digest here"
    return Span(Window(window.spec, start, window.end), note)


def before_first_digest(session: Session) -> datetime | None:
    """Before any digest went out, the oldest stored change: the first themes run covers what
    the first digest will (everything stored); None once a digest was delivered."""
    if session.scalar(select(Delivery.id).limit(1)) is not None:
        return None
    oldest: datetime | None = session.scalar(select(func.min(Item.updated_at)))
    return oldest


def active_since(session: Session, since: datetime) -> int:
    """Items changed since `since` (what a themes window holds)."""
    return int(session.scalar(select(func.count(Item.key)).where(Item.updated_at >= since)) or 0)
