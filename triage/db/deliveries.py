"""The deliveries table: which window went to which target, so a window is delivered once.

A Slack delivery is claimed (row inserted) before the first message is posted and its progress is
kept in `ref` as JSON ({"channel", "ts", "sent", "total"}), so a run that stopped half-way resumes
in the same thread instead of posting the digest twice.
"""

from __future__ import annotations

import json
import os
import socket
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
    # The process that holds the claim ("host:pid"), so a re-run can tell it has died.
    owner: str | None = None

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
            owner=data.get("owner"),
        )


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claimer_gone(owner: str | None) -> bool:
    """True only when the claiming process ran on this host and no longer exists."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive under another user, or not ours to signal
        return False
    return False


def known_channel(session: Session, sink: str, target: str) -> str | None:
    """The channel id an earlier delivery to `target` was posted in (Slack answers ids)."""
    refs = session.scalars(
        select(Delivery.ref)
        .where(Delivery.sink == sink, Delivery.target == target)
        .order_by(Delivery.delivered_at.desc())
    )
    return next((p.channel for p in map(Progress.load, refs) if p.channel), None)


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
            s.add(_row(sink, target, start, end, Progress(owner=this_process()).dump()))
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
