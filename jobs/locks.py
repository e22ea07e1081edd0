"""One run per slot across replicas, and one daemon per SQLite file.

APScheduler job stores must not be shared between schedulers, so each replica schedules every job
itself and the database decides which replica runs a given slot.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite

from triage.db.schema import JobSlot
from triage.db.store import utcnow
from triage.errors import TriageError


class DaemonAlreadyRunning(TriageError):
    """A second daemon on one SQLite file would run every job twice."""


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def claim_slot(engine: Engine, job: str, slot: str, replica: str) -> bool:
    """True for exactly one caller per (job, slot), whichever replica asks first."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(JobSlot)
        .values(job=job, slot=slot, replica=replica, claimed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["job", "slot"])
        .returning(JobSlot.replica)  # a row back only when this insert created it
    )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Replicas asking for the same slot at the same instant: the loser does not even
            # wait for the winner's insert; the lock is released when this transaction ends.
            got = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _lock_key(job, slot)}
            ).scalar()
            if not got:
                return False
        return conn.execute(stmt).first() is not None


@contextmanager
def job_mutex(engine: Engine, job: str) -> Iterator[bool]:
    """Yield whether this replica may run `job` now: never two runs of one job at once.

    A slow run can still be going when another replica claims the next slot; the session-level
    advisory lock (held on its own connection for the whole run) makes that replica skip it.
    SQLite has one daemon per file, so the in-process guard in the daemon is enough there.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = _lock_key("job", job)
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()


def job_running(engine: Engine, job: str) -> bool:
    """Whether a replica holds `job`'s mutex now (PostgreSQL), read without taking it.

    Trying the lock to find out would make a replica starting the next run at that instant
    lose it. pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low).
    """
    if engine.dialect.name != "postgresql":
        return False
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())"
        " AND ((classid::bigint << 32) | objid::bigint) = :key"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query, {"key": _lock_key("job", job)}).scalar())


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or in-memory)."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return Path(db).resolve()


class DaemonLock:
    """An exclusive lock on `<db>.daemon.lock`; the OS drops it when the process dies."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = db.with_name(db.name + ".daemon.lock")
        self._fh: IO[Any] | None = None

    def acquire(self) -> None:
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise DaemonAlreadyRunning(
                f"a triage daemon ({holder}) is already running on {self.db};"
                " SQLite allows one daemon per database file: stop it, or use PostgreSQL"
                " ([database] url) to run several replicas"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
