"""Named jobs with their schedule keys; each is a plain function of the Context returning counts.

Every job does what a CLI command does (`triage sync`, `triage analyze`, ...) by calling the same
library functions, so a daemon run and a manual run can never drift apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from jobs import runs
from triage.context import Context
from triage.errors import TriageError
from triage.logs import get_logger, redact

if TYPE_CHECKING:  # classify is imported when a job runs, so the CLI starts light
    from triage.analysis.classify import RunStats

Counts = dict[str, int]
JobFunc = Callable[[Context], Counts]

log = get_logger("triage.jobs")
_stop = threading.Event()


class JobSkipped(Exception):
    """Nothing to do by design (e.g. no sources configured): not a failure."""

    def __init__(self, message: str, counts: Counts | None = None) -> None:
        super().__init__(message)
        self.counts = dict(counts or {})


class _Checkpoint(Exception):
    """Raised between batches when the daemon is stopping; the work so far is committed."""


class JobFailed(Exception):
    """The job ran but did not do its work (e.g. every request failed); keeps partial counts."""

    def __init__(self, message: str, counts: Counts | None = None) -> None:
        super().__init__(message)
        self.counts = dict(counts or {})


def request_stop() -> None:
    """Ask running jobs to stop at their next checkpoint."""
    _stop.set()


def stopping() -> bool:
    return _stop.is_set()


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    command: str  # the CLI command doing the same work
    doc: str
    schedule: str | None = None  # fixed schedule (test jobs); else [schedule] <name>


# -- the jobs ------------------------------------------------------------------------------


def sync(ctx: Context) -> Counts:
    """One incremental pass over every configured source; one bad source never blocks the rest."""
    from triage import ingest

    builders = ingest.source_builders(ctx)
    if not builders:
        raise JobSkipped("no sources configured: set [github] repos or [stackexchange] tags")
    counts: Counts = {"sources": 0, "items": 0, "new": 0, "updated": 0, "requests": 0}
    errors: list[str] = []
    for _kind, label, build in builders:
        if stopping():
            counts["stopped_early"] = 1
            break
        try:
            sources = build()
        except Exception as exc:
            errors.append(f"{label}: {one_line(exc)}")
            continue
        for source in sources:
            if stopping():
                counts["stopped_early"] = 1
                break
            try:
                name = ingest.sync_cursor_name(source)
                since = ingest.first_sync_start(ctx, source, name)
                stats = ingest.run(ctx.sessions, source, name, since=since)
            except Exception as exc:  # logged and counted; the other sources still run
                errors.append(f"{source.name}: {one_line(exc)}")
                continue
            counts["sources"] += 1
            counts["items"] += stats.items
            counts["new"] += stats.new
            counts["updated"] += stats.updated
            counts["requests"] += stats.requests
    counts["sources_failed"] = len(errors)
    if errors:
        raise JobFailed("; ".join(errors), counts)
    return counts


def analyze_counts(stats: RunStats) -> Counts:
    """What an analyze run (or one replica's unit of it) did, from classify.RunStats."""
    return {
        "planned": stats.planned,
        "analysed": stats.analysed,
        "needs_review": stats.reviews,
        "pending": len(stats.failed),
        "calls": stats.calls,
        "input_tokens": stats.input_tokens,
        "output_tokens": stats.output_tokens,
    }


def analyze(ctx: Context) -> Counts:
    """Classify and summarize every new or changed item (`triage analyze`)."""
    from triage.analysis import classify

    provider = ctx.provider()

    def checkpoint(_stats: classify.RunStats) -> None:
        if stopping():
            raise _Checkpoint

    stats = classify.RunStats(provider.name, provider.model)
    try:
        stats = classify.run(ctx, provider, on_batch=checkpoint)
    except _Checkpoint:
        return {"stopped_early": 1}
    counts = analyze_counts(stats)
    if stats.exhausted is not None:
        # Budget spent: state is saved and the next day's slots continue; not a fault.
        raise JobSkipped(str(stats.exhausted), counts)
    if stats.failed:
        reason = stats.stopped or next(iter(stats.failed.values()))
        raise JobFailed(f"{len(stats.failed)} items still pending ({reason})", counts)
    return counts


def poll(ctx: Context) -> Counts:
    """Collect finished Gemini Batch Mode jobs (`triage analyze --poll`)."""
    from triage.providers import spec_for

    if "batch" not in spec_for(ctx.config.llm.provider).capabilities:
        raise JobSkipped("Batch Mode polling needs the gemini provider")
    from triage.analysis import batch
    from triage.providers.base import end_run

    provider = batch.batch_provider(ctx.provider())
    try:
        got = batch.poll(ctx, provider)
    finally:
        end_run(provider)
    final = got.retried or got.outcome
    counts = {
        "collected": len(got.collected),
        "running": len(got.running),
        "failed_jobs": len(got.failed_jobs),
        "analysed": (got.outcome.analysed if got.outcome else 0)
        + (got.retried.analysed if got.retried else 0),
        "pending": len(final.failed) if final else 0,
    }
    if got.failed_jobs:
        name, why = next(iter(got.failed_jobs.items()))
        raise JobFailed(f"batch job {name} failed ({why}); its items are pending again", counts)
    return counts


def themes(ctx: Context) -> Counts:
    """Group new and changed items of the [themes] window into themes (`triage themes`)."""
    from triage.analysis.themes import run as th
    from triage.db import store
    from triage.digest_span import before_first_digest
    from triage.windows import parse_window

    since = store.utcnow() - parse_window(ctx.config.themes.window)
    with ctx.sessions() as session:
        oldest = before_first_digest(session)  # the first digest covers everything stored
    run = th.run_for_context(ctx, min(since, oldest) if oldest else since)
    counts = runs.counts_of(run)
    if run.failed:
        raise JobFailed(f"{run.failed} items not themed (a model call failed)", counts)
    return counts


def duplicates(ctx: Context) -> Counts:
    """Link open items that report the same problem (`triage duplicates`)."""
    from triage.analysis.duplicates import run as dups

    run = dups.run_for_context(ctx)
    counts = runs.counts_of(run)
    if run.failed:
        raise JobFailed(f"{run.failed} candidate pairs could not be judged", counts)
    return counts


# A digest reports what sync and analyze stored. When they fire at the same minute (the
# defaults: sync every 15m, digest at 09:00), the digest waits for them, on any replica.
INGEST_JOBS = ("sync", "analyze")
INGEST_GRACE = 3.0  # seconds for a job fired in the same instant to record its run
INGEST_WAIT = 1800.0  # never wait longer than this for a slow sync or analyze


def ingest_running(ctx: Context) -> bool:
    """Whether a sync or analyze run is in progress on any replica (from job_runs)."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from triage.db.schema import JobRun
    from triage.db.store import utcnow

    with ctx.sessions() as s:
        busy = s.scalar(
            select(func.count(JobRun.id)).where(
                JobRun.job.in_(INGEST_JOBS),
                JobRun.outcome == "running",
                JobRun.started_at >= utcnow() - timedelta(seconds=INGEST_WAIT * 2),
            )
        )
    return bool(busy)


def wait_for_ingest(ctx: Context, grace: float = INGEST_GRACE, limit: float = INGEST_WAIT) -> None:
    """Let a running (or just fired) sync and its analyze finish before the digest is built."""
    deadline = time.monotonic() + limit
    _stop.wait(grace)
    idle_checks = 0
    while idle_checks < 2 and time.monotonic() < deadline and not stopping():
        # Two idle looks in a row: analyze is chained right after a sync, with a gap between.
        idle_checks = 0 if ingest_running(ctx) else idle_checks + 1
        if idle_checks < 2:
            _stop.wait(1.0)


def digest(ctx: Context) -> Counts:
    """Deliver the digest of the last [digest] window, once per window (`triage digest`)."""
    from triage import sinks
    from triage.digest import build_covering
    from triage.windows import Window

    wait_for_ingest(ctx)
    dest = sinks.destination(ctx)
    with ctx.sessions() as session:
        d = build_covering(session, ctx.config, Window.ending(ctx.config.digest.window), dest)
    counts = {"items": d.total.current, "themes": d.active_themes}
    if dest == "stdout":
        raise JobSkipped("[digest] to = stdout has no place to go in the daemon")
    outcome = sinks.deliver(ctx, d, dest, echo=lambda _line: None)
    if outcome.status == "written":
        log.info("digest written", path=outcome.detail.removeprefix("wrote "))
        return {**counts, "files": 1}
    log.info("digest delivery", status=outcome.status, detail=outcome.detail)
    return {
        **counts,
        "posted": outcome.posted,
        "already_delivered": int(outcome.status == "skipped"),
    }


def labels(ctx: Context) -> Counts:
    """Write planned labels to GitHub (only with [labels] apply = true)."""
    from triage.sinks.labels.apply import apply
    from triage.sinks.labels.plan import plan as plan_labels

    if not ctx.config.labels.apply:
        raise JobSkipped("label write-back is off ([labels] apply = false)")
    plan = plan_labels(ctx)
    result = apply(ctx, plan, should_stop=stopping)
    counts = {**result.counts(), "planned": plan.writes, "corrections": len(plan.new_corrections)}
    if result.failed:
        raise JobFailed(result.failure_summary(), counts)
    if result.stopped:
        if stopping():
            return {**counts, "stopped_early": 1}
        raise JobFailed(result.stopped, counts)
    return counts


def tick(ctx: Context, seconds: float = 1.0) -> Counts:
    """A test job that works for `seconds`; it has no checkpoint, so a stop waits for it."""
    deadline = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        steps += 1
    return {"ticks": 1, "steps": steps}


def one_line(exc: BaseException) -> str:
    """An error as the one line a run records: our own errors as said, others named by type."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if not isinstance(exc, TriageError | JobFailed | JobSkipped):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return redact(text)


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("sync", sync, "triage sync", "fetch new and changed issues and questions"),
        JobSpec("analyze", analyze, "triage analyze", "classify and summarize new items"),
        JobSpec("themes", themes, "triage themes", "group recent items into themes"),
        JobSpec("duplicates", duplicates, "triage duplicates", "link likely duplicates"),
        JobSpec("digest", digest, "triage digest", "deliver the digest of the last window"),
        JobSpec("labels", labels, "triage label --apply", "write labels back to GitHub"),
        JobSpec("poll", poll, "triage analyze --poll", "collect finished Batch Mode jobs"),
    )
}


def tick_job(every: float, seconds: float) -> JobSpec:
    """The test-only job: never registered unless the daemon is started with its hidden option."""
    return JobSpec(
        "tick", partial(tick, seconds=seconds), "-", "test job", schedule=f"every {every:g}s"
    )


def _batches(ctx: Context) -> bool:
    """The configured provider runs Batch Mode jobs (PROVIDERS capabilities)."""
    from triage.providers import PROVIDERS

    spec = PROVIDERS.get(ctx.config.llm.provider)
    return spec is not None and "batch" in spec.capabilities


def schedule_for(ctx: Context, spec: JobSpec) -> str:
    if spec.schedule is not None:
        return spec.schedule
    return str(getattr(ctx.config.schedule, spec.name, "off"))


def off_reason(ctx: Context, spec: JobSpec) -> str | None:
    """Why the daemon does not schedule this job, or None when it does."""
    if spec.name == "labels" and not ctx.config.labels.apply:
        return "[labels] apply = false"
    if spec.name == "poll" and not _batches(ctx):
        return "Batch Mode needs the gemini provider"
    if spec.schedule is None and schedule_for(ctx, spec).strip().lower() in {
        "off",
        "never",
        "disabled",
        "",
    }:
        return f"[schedule] {spec.name} = off"
    return None


def select_jobs(ctx: Context, only: list[str] | None = None) -> list[JobSpec]:
    """The jobs to schedule, in pipeline order; unknown names in `only` are a config error."""
    from triage.errors import ConfigError

    if only:
        unknown = [n for n in only if n not in JOBS]
        if unknown:
            raise ConfigError(f"unknown job {unknown[0]!r}: choose from {', '.join(JOBS)}")
    return [
        spec
        for name, spec in JOBS.items()
        if (not only or name in only) and off_reason(ctx, spec) is None
    ]
