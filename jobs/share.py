"""Replicas on one PostgreSQL database share a sync or an analyze run through work units.

The replica that wins a slot (jobs/locks.py) plans the run as units (triage/db/claims.py): one
per source for sync, batches of pending item keys for analyze. It then claims units like any
other replica until none is left, and waits for the units others hold (taking over any whose
lease expired) before its run ends. A replica that loses the slot to a live run helps: it claims
units of that run until none is left, and stops once the run is over (a dead replica's units
are taken over first, when their leases run out).

While a unit runs, a heartbeat renews its lease every third of `[daemon] lease_seconds`. Every
store of an analyze unit's answers renews the lease in the same transaction (claims.hold), so
the answers of a replica whose unit was taken over are refused, never stored twice. On shutdown
a unit is finished or, at the analyze checkpoint between calls, given back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from jobs.registry import Counts, JobFailed, JobSkipped, analyze_counts, one_line, stopping
from triage.context import Context
from triage.db import claims
from triage.db.claims import Claim, Planned, StaleClaim
from triage.logs import get_logger

log = get_logger("triage.share")
POLL = 0.2  # seconds between looks for a free unit while other replicas hold the rest
START_GRACE = 5.0  # a helper waits this long for the slot's winner to start its run

Guard = Callable[[Session], None]


class _Released(Exception):
    """The daemon is stopping: the unit goes back unfinished (its stored answers stay)."""

    def __init__(self, done: dict[str, Any]) -> None:
        super().__init__("stopping")
        self.done = done  # what was stored before it went back, for this replica's counts


@dataclass(frozen=True)
class Sharing:
    """How a job's run splits into units, how one unit is done, and how results add up."""

    plan: Callable[[Context], tuple[list[Planned], list[str]]]  # units, and planning errors
    work: Callable[[Context, Claim, Guard], dict[str, Any]]  # the unit's result, stored with it
    total: Callable[[list[dict[str, Any]], list[str]], Counts]  # raises JobFailed/JobSkipped


class Worker:
    """Claims and does units of one job for one replica."""

    def __init__(self, ctx: Context, job: str, sharing: Sharing, replica: str) -> None:
        self.ctx, self.job, self.sharing, self.replica = ctx, job, sharing, replica
        self.lease = ctx.config.daemon.lease_seconds
        self.done: list[dict[str, Any]] = []  # results of the units this replica finished
        self.given_back: list[dict[str, Any]] = []  # what it stored of units it gave back

    def claim(self) -> Claim | None:
        return claims.claim(self.ctx.sessions, self.job, self.replica, self.lease)

    def drain(self, keep_waiting: Callable[[], bool], first: Claim | None = None) -> None:
        """Do units until none is free and `keep_waiting` says there is nothing to wait for."""
        c = first
        while not stopping():
            c = c or self.claim()
            if c is not None:
                self.do(c)
                c = None
                continue
            if not keep_waiting():
                return
            time.sleep(POLL)
        if c is not None:  # claimed just before the stop: free at once, not at lease expiry
            claims.release(self.ctx.sessions, c)

    def do(self, c: Claim) -> None:
        log.debug("unit claimed", job=self.job, unit=c.unit, attempt=c.attempt)
        beat = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(c, beat), daemon=True)
        heart.start()
        try:
            result = self.sharing.work(self.ctx, c, lambda s: claims.hold(s, c, self.lease))
        except StaleClaim:
            log.warning("unit taken over by another replica; its result is not kept", unit=c.unit)
            return
        except _Released as back:
            self.given_back.append(back.done)
            claims.release(self.ctx.sessions, c)
            log.info("unit given back on shutdown", job=self.job, unit=c.unit)
            return
        finally:
            beat.set()
            heart.join()
        if claims.finish(self.ctx.sessions, c, result):
            self.done.append(result)
        else:
            log.warning("unit taken over by another replica; its result is not kept", unit=c.unit)

    def _heartbeat(self, c: Claim, beat: threading.Event) -> None:
        while not beat.wait(self.lease / 3):
            try:
                if not claims.renew(self.ctx.sessions, c, self.lease):
                    return  # taken over: the unit's next store is refused (claims.hold)
            except Exception as exc:  # the database away for a moment: try again next beat
                log.warning("lease not renewed", unit=c.unit, error=str(exc)[:200])


def lead(ctx: Context, job: str, sharing: Sharing, replica: str, run: int) -> Counts:
    """The slot's winner: plan the run's units, do them with the others, add up every result."""
    claims.prune(ctx.sessions)
    units, errors = sharing.plan(ctx)
    claims.plan(ctx.sessions, job, str(run), units)
    worker = Worker(ctx, job, sharing, replica)

    def others_busy() -> bool:
        with ctx.sessions() as s:
            return claims.unfinished(s, job) > 0

    worker.drain(others_busy)
    with ctx.sessions() as s:
        results = [u.result for u in claims.results(s, job, str(run)) if u.state == claims.DONE]
    counts = sharing.total(results, errors)  # raises when a unit failed
    counts.update(units=len(units), units_here=len(worker.done))
    if stopping():
        counts["stopped_early"] = 1
    return counts


def wait_for_unit(ctx: Context, job: str, replica: str, busy: Callable[[], bool]) -> Claim | None:
    """A helper's first unit: wait while the run is planned; None once it is over (or stopping)."""
    worker = Worker(ctx, job, SHARED[job], replica)
    deadline = time.monotonic() + START_GRACE
    seen = False
    while not stopping():
        c = worker.claim()
        if c is not None:
            return c
        running = busy()
        seen = seen or running
        if not running and (seen or time.monotonic() > deadline):
            return None
        time.sleep(POLL)
    return None


def help_run(
    ctx: Context, job: str, replica: str, busy: Callable[[], bool], first: Claim
) -> Counts:
    """Do units of the live run until none is left; the counts are this replica's share."""
    worker = Worker(ctx, job, SHARED[job], replica)

    def keep_waiting() -> bool:
        # The run is live, or its replica died with units claimed: their leases run out and
        # this replica takes them over.
        if busy():
            return True
        with ctx.sessions() as s:
            return claims.unfinished(s, job) > 0

    worker.drain(keep_waiting, first)
    counts = SHARED[job].total(worker.done + worker.given_back, [])
    counts.update(units_here=len(worker.done), helped=1)
    if stopping():
        counts["stopped_early"] = 1
    return counts


# -- sync: one unit per source ------------------------------------------------------------


def plan_sync(ctx: Context) -> tuple[list[Planned], list[str]]:
    from triage import ingest

    builders = ingest.source_builders(ctx)
    if not builders:
        raise JobSkipped("no sources configured: set [github] repos or [stackexchange] tags")
    names: list[str] = []
    errors: list[str] = []
    for _kind, label, build in builders:
        try:
            names += [s.name for s in build()]  # `org/*` is listed here, once per run
        except Exception as exc:
            errors.append(f"{label}: {one_line(exc)}")
    with ctx.sessions() as s:
        held = claims.held_units(s, "sync")  # a dead replica's unit is taken over, not planned
    units = [Planned(n, []) for n in dict.fromkeys(names) if n not in held]
    return units, errors


def sync_unit(ctx: Context, c: Claim, _guard: Guard) -> dict[str, Any]:
    """One source's incremental pass; a failing source is this unit's error, not the run's end.

    Pages commit as they come with their cursor (ingest.run), so a unit taken over after its
    replica died goes on from the last page stored; nothing needs fencing there.
    """
    from triage import ingest
    from triage.sources import source_named

    try:
        source = source_named(ctx, c.unit)
        name = ingest.sync_cursor_name(source)
        stats = ingest.run(
            ctx.sessions, source, name, since=ingest.first_sync_start(ctx, source, name)
        )
    except Exception as exc:
        return {"error": f"{c.unit}: {one_line(exc)}"}
    return {
        "sources": 1,
        "items": stats.items,
        "new": stats.new,
        "updated": stats.updated,
        "requests": stats.requests,
    }


def total_sync(results: list[dict[str, Any]], errors: list[str]) -> Counts:
    keys = ("sources", "items", "new", "updated", "requests")
    counts = {k: sum(int(r.get(k, 0)) for r in results) for k in keys}
    errors = errors + [str(r["error"]) for r in results if r.get("error")]
    counts["sources_failed"] = len(errors)
    if errors:
        raise JobFailed("; ".join(errors), counts)
    return counts


# -- analyze: batches of pending item keys ------------------------------------------------


def plan_analyze(ctx: Context) -> tuple[list[Planned], list[str]]:
    from triage.analysis import classify
    from triage.providers import concurrency_for

    provider = ctx.provider()
    llm = ctx.config.llm
    size = ctx.config.daemon.unit_items or (
        concurrency_for(provider.name, llm.concurrency) * llm.max_items_per_call
    )
    with ctx.sessions() as s:
        held = claims.held_items(s, "analyze")  # left to the unfinished units that hold them
        keys = [it.key for it in classify.pending_items(s, provider) if it.key not in held]
    batches = [keys[i : i + size] for i in range(0, len(keys), size)]
    return [Planned(f"batch-{n:05d}", b) for n, b in enumerate(batches)], []


def analyze_unit(ctx: Context, c: Claim, guard: Guard) -> dict[str, Any]:
    """The unit's items that are still pending (a takeover skips what was stored already)."""
    from triage.analysis import classify

    def checkpoint(stats: classify.RunStats) -> None:
        if stopping() and stats.done + len(stats.failed) < stats.planned:
            raise _Released(
                {**analyze_result(stats), "planned": stats.done}
            )  # calls are left: another replica sends them

    stats = classify.run(ctx, ctx.provider(), keys=c.items, on_batch=checkpoint, guard=guard)
    return analyze_result(stats)


def analyze_result(stats: Any) -> dict[str, Any]:
    """An analyze unit's result from classify.RunStats."""
    result: dict[str, Any] = dict(analyze_counts(stats))
    if stats.exhausted is not None:
        result["exhausted"] = str(stats.exhausted)
    elif stats.failed:
        result["reason"] = stats.stopped or next(iter(stats.failed.values()))
    return result


def total_analyze(results: list[dict[str, Any]], errors: list[str]) -> Counts:
    keys = (
        "planned",
        "analysed",
        "needs_review",
        "pending",
        "calls",
        "input_tokens",
        "output_tokens",
    )
    counts = {k: sum(int(r.get(k, 0)) for r in results) for k in keys}
    exhausted = [r["exhausted"] for r in results if r.get("exhausted")]
    if exhausted:
        raise JobSkipped(str(exhausted[-1]), counts)
    reasons = [r["reason"] for r in results if r.get("reason")]
    if counts["pending"]:
        why = reasons[0] if reasons else "see the log"
        raise JobFailed(f"{counts['pending']} items still pending ({why})", counts)
    return counts


SHARED: dict[str, Sharing] = {
    "sync": Sharing(plan_sync, sync_unit, total_sync),
    "analyze": Sharing(plan_analyze, analyze_unit, total_analyze),
}
