"""Work units that replicas claim with a lease: plan, claim, renew, finish (fenced), prune.

A run plans its units once (idempotent); any replica claims the next free unit, or one whose
lease ran out because the replica holding it died. Each claim raises the unit's `attempt`, and
every write on behalf of a claim names the attempt it holds: after a takeover the old holder's
renewals, stores and finish match no row and are refused.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` lets replicas claim at the same instant without
waiting on each other or taking the same row. SQLite has one daemon per file, so the same
statements without the lock clause are enough there. Lease times are read from the database's
clock on PostgreSQL, so replicas on hosts whose clocks disagree still agree on expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from triage.db.engine import transaction
from triage.db.schema import WorkUnit
from triage.db.store import utcnow

FREE, CLAIMED, DONE = "free", "claimed", "done"
KEEP_FINISHED = timedelta(days=2)


class StaleClaim(Exception):
    """The unit's lease was taken over by another replica: this attempt may not write."""


@dataclass(frozen=True)
class Claim:
    id: int
    job: str
    run: str
    unit: str
    items: list[str]
    attempt: int
    replica: str


@dataclass(frozen=True)
class Planned:
    unit: str
    items: list[str]


def now(session: Session) -> datetime:
    """Naive UTC, from the database's clock where there are several hosts."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT timezone('utc', now())")).scalar_one()
        return value.replace(tzinfo=None)
    return utcnow()


def plan(sessions: sessionmaker[Session], job: str, run: str, units: Sequence[Planned]) -> int:
    """Create the run's units; planning the same run again adds nothing. Returns units created."""
    if not units:
        return 0
    with transaction(sessions) as s:
        dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
        at = now(s)
        rows = [
            {
                "job": job,
                "run": run,
                "unit": u.unit,
                "items": list(u.items),
                "state": FREE,
                "attempt": 0,
                "created_at": at,
                "result": {},
            }
            for u in units
        ]
        stmt = (
            dialect.insert(WorkUnit)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["job", "run", "unit"])
            .returning(WorkUnit.id)  # rows back only for units this call created
        )
        return len(s.execute(stmt).all())


def claim(sessions: sessionmaker[Session], job: str, replica: str, lease: float) -> Claim | None:
    """The oldest free (or lease-expired) unit of `job`, now this replica's; None when none is."""
    while True:
        with transaction(sessions) as s:
            at = now(s)
            claimable = (WorkUnit.job == job) & or_(
                WorkUnit.state == FREE,
                (WorkUnit.state == CLAIMED) & (WorkUnit.lease_until <= at),
            )
            stmt = (
                select(WorkUnit.id, WorkUnit.attempt)
                .where(claimable)
                .order_by(WorkUnit.id)
                .limit(1)
            )
            if s.get_bind().dialect.name == "postgresql":
                # Rows another replica is claiming right now are skipped, not waited for.
                stmt = stmt.with_for_update(skip_locked=True)
            found = s.execute(stmt).first()
            if found is None:
                return None
            # Conditional on what was read, so two claimers without row locks (SQLite) still
            # cannot both win: the second one's update matches nothing and it looks again.
            row = s.execute(
                update(WorkUnit)
                .where(claimable, WorkUnit.id == found.id, WorkUnit.attempt == found.attempt)
                .values(
                    state=CLAIMED,
                    replica=replica,
                    attempt=found.attempt + 1,
                    lease_until=at + timedelta(seconds=lease),
                )
                .returning(WorkUnit.run, WorkUnit.unit, WorkUnit.items, WorkUnit.attempt)
            ).first()
            if row is not None:
                items = list(row.items or [])
                return Claim(found.id, job, row.run, row.unit, items, row.attempt, replica)


def _mine(c: Claim) -> Any:
    return (WorkUnit.id == c.id) & (WorkUnit.attempt == c.attempt) & (WorkUnit.state == CLAIMED)


def hold(session: Session, c: Claim, lease: float) -> None:
    """Renew the lease inside the caller's transaction, or raise StaleClaim.

    Called in the transaction that stores a unit's results, it also locks the unit's row until
    that commit, so no other replica can take the unit over half-way through the store.
    """
    result = session.execute(
        update(WorkUnit).where(_mine(c)).values(lease_until=now(session) + timedelta(seconds=lease))
    )
    if not getattr(result, "rowcount", 0):
        raise StaleClaim(f"{c.job} unit {c.unit} was taken over (attempt {c.attempt} is stale)")


def renew(sessions: sessionmaker[Session], c: Claim, lease: float) -> bool:
    """The heartbeat: False once another replica has taken the unit over."""
    try:
        with transaction(sessions) as s:
            hold(s, c, lease)
    except StaleClaim:
        return False
    return True


def finish(sessions: sessionmaker[Session], c: Claim, result: dict[str, Any]) -> bool:
    """Mark the unit done with its counts; False (nothing written) for a stale attempt."""
    with transaction(sessions) as s:
        done = s.execute(
            update(WorkUnit).where(_mine(c)).values(state=DONE, finished_at=now(s), result=result)
        )
        return bool(getattr(done, "rowcount", 0))


def release(sessions: sessionmaker[Session], c: Claim) -> bool:
    """Give the unit back unfinished (shutdown): the next claim takes it at once."""
    with transaction(sessions) as s:
        freed = s.execute(update(WorkUnit).where(_mine(c)).values(state=FREE, lease_until=None))
        return bool(getattr(freed, "rowcount", 0))


def unfinished(session: Session, job: str) -> int:
    """Units of `job` not done yet, on any run (a dead replica's included)."""
    stmt = select(func.count(WorkUnit.id)).where(WorkUnit.job == job, WorkUnit.state != DONE)
    return int(session.scalar(stmt) or 0)


def held_items(session: Session, job: str) -> set[str]:
    """Item keys in units not done yet: a new plan leaves them to those units."""
    rows = session.scalars(
        select(WorkUnit.items).where(WorkUnit.job == job, WorkUnit.state != DONE)
    )
    return {key for items in rows for key in items or []}


def held_units(session: Session, job: str) -> set[str]:
    """Unit names (e.g. sources) in units not done yet."""
    stmt = select(WorkUnit.unit).where(WorkUnit.job == job, WorkUnit.state != DONE)
    return set(session.scalars(stmt))


def results(session: Session, job: str, run: str) -> list[WorkUnit]:
    stmt = select(WorkUnit).where(WorkUnit.job == job, WorkUnit.run == run).order_by(WorkUnit.id)
    return list(session.scalars(stmt))


def in_flight(session: Session) -> list[WorkUnit]:
    """Units claimed right now, for `triage status`."""
    stmt = select(WorkUnit).where(WorkUnit.state == CLAIMED).order_by(WorkUnit.job, WorkUnit.id)
    return list(session.scalars(stmt))


def prune(sessions: sessionmaker[Session], keep: timedelta = KEEP_FINISHED) -> int:
    """Delete units finished more than `keep` ago."""
    with transaction(sessions) as s:
        gone = s.execute(
            delete(WorkUnit).where(WorkUnit.state == DONE, WorkUnit.finished_at < now(s) - keep)
        )
        return int(getattr(gone, "rowcount", 0) or 0)
