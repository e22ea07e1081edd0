"""A one-off run of a job's command, recorded in job_runs as the daemon records its own runs.

So `triage status` says when `triage duplicates` or `triage themes` last ran, how it ended and
how long it took, whether the daemon ran it or someone at a terminal did.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from jobs import runs
from jobs.registry import one_line
from triage.context import Context
from triage.db.store import utcnow
from triage.errors import BudgetExhausted
from triage.logs import get_logger

log = get_logger("triage.commands")


@dataclass
class Recording:
    """What the command fills in: the run's counts, and why it did not do its work, if so."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: str | None = None


def replica() -> str:
    # The daemon names itself HOST:PID; the prefix tells a terminal's run from a daemon's.
    return f"cli:{socket.gethostname()}:{os.getpid()}"


@contextmanager
def recorded(ctx: Context, job: str) -> Iterator[Recording]:
    """Record the run of `job` that the block does: ok, failed, skipped, or interrupted (Ctrl-C)."""
    from jobs import schedule  # apscheduler: only when a run is recorded, so the CLI starts light

    slot = "cli@" + schedule.slot_name(utcnow())
    run_id = runs.start(ctx.sessions, job, slot, replica())
    rec = Recording()
    outcome, error = runs.OK, None
    try:
        yield rec
    except KeyboardInterrupt:
        outcome, error = runs.INTERRUPTED, "interrupted (Ctrl-C); work committed so far is kept"
        raise
    except BudgetExhausted as exc:  # as in the daemon: the next day's runs continue
        outcome, error = runs.SKIPPED, one_line(exc)
        raise
    except BaseException as exc:
        outcome, error = runs.FAILED, one_line(exc)
        raise
    finally:
        if outcome == runs.OK and rec.failed:
            outcome, error = runs.FAILED, rec.failed
        try:
            runs.finish(ctx.sessions, run_id, outcome, rec.counts, error)
        except Exception as exc:
            if outcome == runs.OK:
                raise
            # The run's own error is the one to say; this one only goes to the log.
            log.warning("could not record the end of the run", job=job, error=one_line(exc))
