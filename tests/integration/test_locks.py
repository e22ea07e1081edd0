"""Slot claims and the per-job mutex, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from jobs import locks
from triage.db import migrate
from triage.db.engine import make_engine
from triage.db.schema import JobSlot


def test_each_slot_is_claimed_exactly_once(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with ThreadPoolExecutor(8) as pool:
        wins = list(
            pool.map(
                lambda i: locks.claim_slot(engine, "sync", "2025-01-01T00:00:00Z", f"r{i}"),
                range(8),
            )
        )
    assert wins.count(True) == 1
    assert locks.claim_slot(engine, "sync", "2025-01-01T00:15:00Z", "r0") is True
    assert locks.claim_slot(engine, "themes", "2025-01-01T00:00:00Z", "r0") is True
    with engine.connect() as conn:
        rows = conn.execute(select(JobSlot.job, JobSlot.slot, JobSlot.replica)).all()
    assert len(rows) == 3
    engine.dispose()


def test_job_mutex_keeps_one_run_of_a_job_at_a_time(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with (
        locks.job_mutex(engine, "analyze") as first,
        locks.job_mutex(engine, "analyze") as second,
        locks.job_mutex(engine, "sync") as other,
    ):
        assert (first, second, other) == (True, False, True)
    with locks.job_mutex(engine, "analyze") as again:
        assert again is True
    engine.dispose()
