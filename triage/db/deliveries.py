"""The deliveries table: which window went to which target, so a window is delivered once.

A Slack delivery is claimed (row inserted) before the first message is posted and its progress is
kept in `ref` as JSON ({"channel", "ts", "sent", "total"}), so a run that stopped half-way resumes
in the same thread instead of posting the digest twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from triage.db.schema import Delivery
from triage.db.store import utcnow

# A claim with nothing posted that is older than this belongs to a run that died; take it over.
STALE_CLAIM = timedelta(minutes=10)


@dataclass
class Progress:
    sent: int = 0
    total: int = 0
    channel: str | None = None
    ts: str | None = None
    # The part being posted: recorded before it is sent, cleared once Slack confirmed it.
    pending: int | None = None

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.sent >= self.total

    def dump(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def load(cls, ref: str | None) -> Progress:
        try:
            data: Any = json.loads(ref or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):  # a plain ref (a message ts): a finished delivery
            return cls(sent=1, total=1, ts=ref)
        return cls(
            sent=int(data.get("sent") or 0),
            total=int(data.get("total") or 0),
            channel=data.get("channel"),
            ts=data.get("ts"),
            pending=data.get("pending"),
        )


def find(
    session: Session, sink: str, target: str, start: datetime, end: datetime
) -> Delivery | None:
    return session.scalar(
        select(Delivery).where(
            Delivery.sink == sink,
            Delivery.target == target,
            Delivery.window_start == start,
            Delivery.window_end == end,
        )
    )


def _row(sink: str, target: str, start: datetime, end: datetime, ref: str) -> Delivery:
    return Delivery(
        sink=sink, target=target, window_start=start, window_end=end, ref=ref, delivered_at=utcnow()
    )


def claim(
    sessions: sessionmaker[Session], sink: str, target: str, start: datetime, end: datetime
) -> bool:
    """Insert the row for a new delivery; False if another run inserted it first."""
    try:
        with sessions() as s, s.begin():
            s.add(_row(sink, target, start, end, Progress().dump()))
    except IntegrityError:
        return False
    return True


def save(
    sessions: sessionmaker[Session],
    sink: str,
    target: str,
    start: datetime,
    end: datetime,
    ref: str,
) -> None:
    """Insert or update the row (progress, a file path, or a re-post with --force)."""
    with sessions() as s, s.begin():
        row = find(s, sink, target, start, end)
        if row is None:
            s.add(_row(sink, target, start, end, ref))
        else:
            row.ref = ref
            row.delivered_at = utcnow()


def release(
    sessions: sessionmaker[Session], sink: str, target: str, start: datetime, end: datetime
) -> None:
    """Drop a claim under which nothing was posted, so the next run starts afresh."""
    with sessions() as s, s.begin():
        row = find(s, sink, target, start, end)
        if row is not None:
            s.delete(row)
