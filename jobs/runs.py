"""The job_runs log: one row per run a replica claimed, with its outcome and counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from triage.db.engine import transaction
from triage.db.schema import JobRun
from triage.db.store import utcnow

RUNNING, OK, FAILED, SKIPPED, INTERRUPTED = "running", "ok", "failed", "skipped", "interrupted"


def start(sessions: sessionmaker[Session], job: str, slot: str, replica: str) -> int:
    with transaction(sessions) as s:
        run = JobRun(job=job, slot=slot, replica=replica, started_at=utcnow(), outcome=RUNNING)
        s.add(run)
        s.flush()
        return run.id


def finish(
    sessions: sessionmaker[Session],
    run_id: int,
    outcome: str,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    with transaction(sessions) as s:
        s.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=utcnow(), outcome=outcome, counts=counts or {}, error=error)
        )


def counts_of(result: Any) -> dict[str, int]:
    """A run's dataclass (DuplicateRun, ThemeRun) as job_runs counts: its numbers, not its rows.

    Every int field goes in, so a field a stage adds later (e.g. duplicates' `searched`) is
    recorded by the daemon and a one-off command alike; lists such as the new links stay out.
    """
    return {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if isinstance(getattr(result, f.name), int)  # bools too: ThemeRun.skipped
    }


def took_seconds(run: JobRun) -> float | None:
    """How long a finished run took; None while it runs."""
    if run.finished_at is None or run.outcome == RUNNING:
        return None
    return round((run.finished_at - run.started_at).total_seconds(), 3)


def interrupt(sessions: sessionmaker[Session], run_ids: Iterable[int], why: str) -> None:
    """Close runs the process cannot wait for; their committed work stays (every stage resumes)."""
    ids = list(run_ids)
    if not ids:
        return
    with transaction(sessions) as s:
        s.execute(
            update(JobRun)
            .where(JobRun.id.in_(ids), JobRun.outcome == RUNNING)
            .values(finished_at=utcnow(), outcome=INTERRUPTED, error=why)
        )


def close_orphans(sessions: sessionmaker[Session], job: str | None = None) -> int:
    """Mark runs left 'running' by a daemon that died.

    Only call it when no other run can be live: at start-up of the one daemon on a SQLite file,
    or for one job while holding that job's mutex (a dead replica's lock died with it).
    """
    stmt = update(JobRun).where(JobRun.outcome == RUNNING)
    if job is not None:
        stmt = stmt.where(JobRun.job == job)
    with transaction(sessions) as s:
        result = s.execute(
            stmt.values(
                finished_at=utcnow(), outcome=INTERRUPTED, error="the daemon stopped during the run"
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def last_runs(session: Session) -> dict[str, JobRun]:
    """The latest run of every job."""
    latest = select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    rows = session.scalars(select(JobRun).join(latest, JobRun.id == latest.c.id))
    return {r.job: r for r in rows}


def recent_failures(session: Session, hours: float = 24, limit: int = 10) -> list[JobRun]:
    since = utcnow() - timedelta(hours=hours)
    stmt = (
        select(JobRun)
        .where(JobRun.outcome.in_([FAILED, INTERRUPTED]), JobRun.started_at >= since)
        .order_by(JobRun.started_at.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def totals(session: Session) -> dict[tuple[str, str], int]:
    """Run counts by (job, outcome) over the whole log, every replica included."""
    rows = session.execute(
        select(JobRun.job, JobRun.outcome, func.count()).group_by(JobRun.job, JobRun.outcome)
    )
    return {(job, outcome): int(n) for job, outcome, n in rows}
