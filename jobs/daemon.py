"""`triage run`: an APScheduler 3 scheduler per replica, each run guarded by a slot claim.

A failing job is logged, counted and tried again at its next slot; it never stops the daemon.
SIGTERM/SIGINT stop scheduling, let running jobs finish (up to a grace time, else they are closed
as interrupted: every stage commits as it goes and resumes), and exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from types import FrameType

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from jobs import locks, runs, schedule, share, slots
from jobs.health import HealthServer, Snapshot
from jobs.registry import JobFailed, JobSkipped, JobSpec, one_line, request_stop, schedule_for
from triage.context import Context
from triage.db.store import utcnow
from triage.errors import BudgetExhausted
from triage.logs import get_logger

log = get_logger("triage.daemon")


@dataclass
class Options:
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    stop_timeout: float = 60.0
    replica: str | None = None
    misfire_grace_time: int = 3600
    catch_up: bool = True  # start with sync -> analyze -> themes -> digest, then the schedule


@dataclass
class Metrics:
    """What this process did, for /metrics."""

    runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    last_success: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


class Daemon:
    def __init__(self, ctx: Context, specs: list[JobSpec], options: Options | None = None) -> None:
        self.ctx = ctx
        self.specs = {s.name: s for s in specs}
        self.options = options or Options()
        self.replica = self.options.replica or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = Metrics()
        self.scheduler: BackgroundScheduler | None = None
        self.health: HealthServer | None = None
        self._guards = {name: threading.Lock() for name in self.specs}
        self._running: dict[int, str] = {}
        self._rerun: set[str] = set()
        self._stop = threading.Event()
        self._force = False
        self._lock: locks.DaemonLock | None = None
        self._last_error: dict[str, str] = {}
        self._tz: tzinfo = schedule.zone(ctx.config.schedule.timezone)
        # Validate every schedule before anything starts: a typo is a config error, not a crash.
        self.triggers = {
            name: schedule.trigger(name, schedule_for(ctx, spec), self._tz)
            for name, spec in self.specs.items()
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def acquire(self) -> None:
        """Refuse a second daemon on one SQLite file; tidy runs a dead daemon left open."""
        if self._lock is not None:
            return  # already ours (the command takes it before logging its start-up advice)
        path = locks.sqlite_path(self.ctx.engine)
        if path is not None:
            self._lock = locks.DaemonLock(path)
            self._lock.acquire()
            closed = runs.close_orphans(self.ctx.sessions)
            if closed:
                log.warning("closed runs left open by a stopped daemon", runs=closed)

    def start(self) -> None:
        self.acquire()
        if self.options.health_port is not None:
            self.health = HealthServer(
                self.snapshot, self.ctx.sessions, self.options.health_host, self.options.health_port
            )
        sched = BackgroundScheduler(
            executors={"default": slots.SlotExecutor(max_workers=len(self.specs) + 2)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.options.misfire_grace_time,
            },
            timezone=self._tz,
        )
        for name, trig in self.triggers.items():
            if trig is None:
                log.info("job switched off in [schedule]", job=name)
                continue
            sched.add_job(self.execute, trig, args=[name], id=name, name=name)
        # APScheduler's own log lines would bypass our structured log: report its events here.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        sched.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        sched.start()
        self.scheduler = sched
        for job in sched.get_jobs():
            log.info(
                "job scheduled",
                job=job.id,
                schedule=schedule_for(self.ctx, self.specs[job.id]),
                next_run=job.next_run_time.isoformat() if job.next_run_time else None,
            )
        if self.health is not None:
            self.health.start()
            log.info("health endpoint listening", url=self.health.url)
        log.info("daemon started", replica=self.replica, jobs=len(sched.get_jobs()))
        if self.options.catch_up and any(n in self.specs for n in CATCH_UP):
            sched.add_job(self.catch_up, "date", id="catch-up", name="catch-up")

    def _on_event(self, event: JobEvent) -> None:
        times = getattr(event, "scheduled_run_times", None) or [
            getattr(event, "scheduled_run_time", None)
        ]
        slot = schedule.slot_name(times[-1]) if times[-1] is not None else None
        job = event.job_id.split(":")[0]
        if event.code == EVENT_JOB_MISSED:
            log.warning("slot missed (the process was busy or asleep)", job=job, slot=slot)
        else:
            log.info("previous run still going; slot left to the next one", job=job, slot=slot)

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            self._force = True
            return
        self._stop.set()
        request_stop()

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; exit code 0 once running jobs finished or checkpointed."""
        self.install_signals()
        self.start()
        while not self._stop.wait(1.0):
            pass
        return self.shutdown()

    def shutdown(self) -> int:
        busy = sorted(set(self._running.values()))
        log.info("stopping", waiting_for=busy, up_to_seconds=self.options.stop_timeout)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.options.stop_timeout
        while self._running and time.monotonic() < deadline and not self._force:
            time.sleep(0.05)
        if self._running:
            runs.interrupt(
                self.ctx.sessions,
                list(self._running),
                "stopped before the job finished; work committed so far is kept",
            )
            log.warning("stopped during a run; it resumes next time", jobs=busy)
            self._cleanup()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # job threads cannot be killed; their work is already checkpointed
        self._cleanup()
        log.info("stopped")
        return 0

    def _cleanup(self) -> None:
        if self.health is not None:
            self.health.stop()
        if self._lock is not None:
            self._lock.release()

    def healthy(self) -> tuple[bool, str]:
        if self.scheduler is None or not self.scheduler.running or self._stop.is_set():
            return False, "scheduler not running"
        try:
            with self.ctx.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            return False, f"database not answering: {one_line(exc)}"
        return True, "ok"

    def snapshot(self) -> Snapshot:
        """What /healthz and /metrics report, taken fresh for each request."""
        healthy, detail = self.healthy()
        return Snapshot(
            healthy=healthy,
            detail=detail,
            jobs=tuple(self.specs),
            runs=dict(self.metrics.runs),
            last_success=dict(self.metrics.last_success),
            started=self.metrics.started,
        )

    # -- running one job ---------------------------------------------------------------------
    def run_once(self) -> int:
        """Every job once, in order (sync before analyze); 1 if any failed."""
        self.install_signals()
        self.acquire()
        slot = "once@" + schedule.slot_name(utcnow())
        outcomes = []
        try:
            for name, trig in self.triggers.items():
                if self._stop.is_set():
                    break
                if trig is not None:
                    outcomes.append(self.execute(name, slot))
        finally:
            self._cleanup()
        return 1 if runs.FAILED in outcomes else 0

    def execute(self, name: str, slot: str | None = None, chained: bool = False) -> str | None:
        """Claim the slot, run the job, record it; never raises (a job must not stop the daemon)."""
        if self._stop.is_set():
            return None
        slot = slot or slots.current() or schedule.slot_name(utcnow())
        guard = self._guards[name]
        if not guard.acquire(blocking=False):
            if chained:
                self._rerun.add(name)
            log.info("previous run still going; slot left to the next one", job=name, slot=slot)
            return None
        try:
            return self._claim_and_run(self.specs[name], slot)
        except Exception as exc:  # e.g. the database went away between claim and record
            self.metrics.runs[(name, runs.FAILED)] += 1
            log.error("job could not run", job=name, slot=slot, error=one_line(exc))
            return runs.FAILED
        finally:
            guard.release()
            if name in self._rerun and not self._stop.is_set():
                self._rerun.discard(name)
                self._chain(name, f"rerun@{schedule.slot_name(utcnow())}")

    def _claim_and_run(self, spec: JobSpec, slot: str) -> str | None:
        engine = self.ctx.engine
        sharing = self._sharing(spec)
        if not locks.claim_slot(engine, spec.name, slot, self.replica):
            if sharing is not None:
                return self._help(spec, slot)
            log.debug("slot claimed by another replica", job=spec.name, slot=slot)
            return None
        with locks.job_mutex(engine, spec.name) as mine:
            if not mine:
                if sharing is not None:
                    return self._help(spec, slot)
                run_id = runs.start(self.ctx.sessions, spec.name, slot, self.replica)
                runs.finish(
                    self.ctx.sessions, run_id, runs.SKIPPED, {}, "still running on another replica"
                )
                self.metrics.runs[(spec.name, runs.SKIPPED)] += 1
                return runs.SKIPPED
            if engine.dialect.name == "postgresql":
                # Holding the job's lock proves no live replica runs it: any open run is an orphan.
                runs.close_orphans(self.ctx.sessions, spec.name)
            if sharing is None:
                return self._run(spec, slot)
            return self._run(
                spec, slot, lambda run: share.lead(self.ctx, spec.name, sharing, self.replica, run)
            )

    def _sharing(self, spec: JobSpec) -> share.Sharing | None:
        """Replicas share sync and analyze runs on PostgreSQL; SQLite has one daemon."""
        if self.ctx.engine.dialect.name != "postgresql" or spec.schedule is not None:
            return None
        return share.SHARED.get(spec.name)

    def _help(self, spec: JobSpec, slot: str) -> str | None:
        """Another replica runs this job now: claim units of its run until none is left."""
        engine = self.ctx.engine

        def busy() -> bool:
            return locks.job_running(engine, spec.name)

        first = share.wait_for_unit(self.ctx, spec.name, self.replica, busy)
        if first is None:
            log.debug("slot run by another replica; nothing left to share", job=spec.name)
            return None
        log.info("helping the run of another replica", job=spec.name, slot=slot)
        return self._run(
            spec, slot, lambda _run: share.help_run(self.ctx, spec.name, self.replica, busy, first)
        )

    def _run(
        self, spec: JobSpec, slot: str, work: Callable[[int], dict[str, int]] | None = None
    ) -> str:
        """Record and run one run; `work(run_id)` instead of the job's function when shared."""
        run_id = runs.start(self.ctx.sessions, spec.name, slot, self.replica)
        self._running[run_id] = spec.name
        started = time.monotonic()
        outcome, counts, error = runs.OK, {}, None
        log.info("job started", job=spec.name, slot=slot)
        try:
            counts = dict((work(run_id) if work else spec.func(self.ctx)) or {})
            if counts.get("stopped_early"):
                outcome, error = runs.INTERRUPTED, "stopped early on shutdown; resumes next run"
        except JobSkipped as exc:
            outcome, counts, error = runs.SKIPPED, exc.counts, one_line(exc)
        except BudgetExhausted as exc:  # state saved; the next day's slots continue
            outcome, error = runs.SKIPPED, one_line(exc)
        except JobFailed as exc:
            outcome, counts, error = runs.FAILED, exc.counts, one_line(exc)
        except BaseException as exc:  # even SystemExit from a library must not leak the run
            outcome, error = runs.FAILED, one_line(exc)
        seconds = round(time.monotonic() - started, 3)
        try:
            runs.finish(self.ctx.sessions, run_id, outcome, counts, error)
        finally:
            self._running.pop(run_id, None)
        self.metrics.runs[(spec.name, outcome)] += 1
        if outcome == runs.OK:
            self.metrics.last_success[spec.name] = time.time()
        level = {runs.FAILED: log.error, runs.SKIPPED: log.info}.get(outcome, log.info)
        if outcome == runs.FAILED and error is not None:
            # Said once (e.g. a source unreachable without network): the same error again is quiet.
            if self._last_error.get(spec.name) == error:
                level, error = log.info, "the same error as the previous run"
            else:
                self._last_error[spec.name] = error
        else:
            self._last_error.pop(spec.name, None)
        level(
            "job finished",
            job=spec.name,
            outcome=outcome,
            seconds=seconds,
            error=error,
            counts=counts,
        )
        catching_up = slot.startswith("startup@")  # the catch-up cycle runs analyze itself
        if (
            spec.name == "sync"
            and counts.get("new", 0) + counts.get("updated", 0) > 0
            and not (catching_up)
        ):
            self._chain("analyze", f"after-sync@{slot}")
        return outcome

    def catch_up(self) -> None:
        """The first cycle runs now instead of at the first slot: a new user sees a digest."""
        slot = "startup@" + schedule.slot_name(utcnow())
        names = [n for n in CATCH_UP if n in self.specs]
        log.info("catch-up cycle started", jobs=names)
        for name in names:
            if self._stop.is_set():
                return
            self.execute(name, slot)
        log.info("catch-up cycle done; the jobs now follow [schedule]")

    def _chain(self, name: str, slot: str) -> None:
        """Run `name` now (e.g. analyze right after a sync brought new items)."""
        if name not in self.specs or self.scheduler is None or not self.scheduler.running:
            return
        self.scheduler.add_job(
            self.execute,
            "date",
            args=[name, slot[:100]],
            kwargs={"chained": True},
            id=f"{name}:chained",
            replace_existing=True,
        )


# The start-up cycle, in pipeline order: what a digest needs, nothing that writes to GitHub.
CATCH_UP = ("sync", "analyze", "themes", "digest")
