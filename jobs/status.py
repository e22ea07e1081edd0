"""What `triage status` and `triage doctor` say about the jobs: schedules, next and last runs."""

from __future__ import annotations

from typing import Any

from jobs import runs, schedule
from jobs.registry import JOBS, off_reason, schedule_for
from triage.context import Context
from triage.errors import TriageError


def schedule_overview(ctx: Context) -> dict[str, dict[str, Any]]:
    """Each job's schedule and next run (naive UTC), for `triage status`."""
    tz = schedule.zone(ctx.config.schedule.timezone)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in JOBS.items():
        expr = schedule_for(ctx, spec)
        reason = off_reason(ctx, spec)
        nxt = None if reason else schedule.next_run(schedule.trigger(name, expr, tz))
        out[name] = {
            "schedule": expr,
            "off": reason,
            "next_run": nxt.isoformat() if nxt else None,
        }
    return out


def job_status(ctx: Context) -> dict[str, dict[str, Any]]:
    """Per job: schedule, next run, last run (any replica) — what `triage status` shows."""
    overview = schedule_overview(ctx)
    with ctx.sessions() as s:
        last = runs.last_runs(s)
    out: dict[str, dict[str, Any]] = {}
    for name in [*overview, *sorted(set(last) - set(overview))]:
        run = last.get(name)
        entry: dict[str, Any] = dict(overview.get(name, {"schedule": None, "off": None}))
        entry.setdefault("next_run", None)
        entry.update(
            started_at=run.started_at.isoformat() if run else None,
            finished_at=run.finished_at.isoformat() if run and run.finished_at else None,
            took_seconds=runs.took_seconds(run) if run else None,
            outcome=run.outcome if run else None,
            error=run.error if run else None,
            counts=run.counts if run else {},
            replica=run.replica if run else None,
        )
        out[name] = entry
    return out


def units_in_flight(ctx: Context) -> list[dict[str, Any]]:
    """Units of a shared sync or analyze run that a replica holds now (triage/db/claims.py)."""
    from triage.db import claims

    with ctx.sessions() as s:
        return [
            {
                "job": u.job,
                "unit": u.unit,
                "items": len(u.items or []),
                "replica": u.replica,
                "attempt": u.attempt,
                "lease_until": u.lease_until.isoformat() if u.lease_until else None,
            }
            for u in claims.in_flight(s)
        ]


def failures(ctx: Context, hours: float = 24) -> list[dict[str, Any]]:
    """Failed or interrupted runs of the last `hours`, newest first."""
    with ctx.sessions() as s:
        return [
            {
                "job": r.job,
                "slot": r.slot,
                "started_at": r.started_at.isoformat(),
                "outcome": r.outcome,
                "error": r.error,
                "replica": r.replica,
            }
            for r in runs.recent_failures(s, hours)
        ]


def doctor_check(ctx: Context) -> str:
    """`triage doctor`: every schedule parses; say what runs next and what is off."""
    overview = schedule_overview(ctx)  # raises ConfigError naming a bad value
    if ctx.config.labels.apply and ctx.secrets.github_token is None:
        raise TriageError("[labels] apply = true needs GITHUB_TOKEN with write access to issues")
    on = {n: v for n, v in overview.items() if not v["off"]}
    off = [f"{n} ({v['off']})" for n, v in overview.items() if v["off"]]
    first = min(on.items(), key=lambda kv: kv[1]["next_run"] or "~", default=None)
    text = f"{len(on)} jobs scheduled in {ctx.config.schedule.timezone}"
    if first is not None:
        text += f", next: {first[0]} at {first[1]['next_run']} UTC"
    return text + (f"; off: {', '.join(off)}" if off else "")
