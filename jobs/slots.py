"""The thread pool running scheduled jobs, telling each run which slot it is for."""

from __future__ import annotations

import threading
from typing import Any

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor

from jobs import schedule

_slot = threading.local()


def _run_in_slot(job: Any, alias: str, run_times: list[Any], logger_name: str) -> Any:
    # With coalescing there is one run time: the scheduled instant every replica agrees on.
    _slot.value = schedule.slot_name(run_times[-1]) if run_times else None
    try:
        return run_job(job, alias, run_times, logger_name)
    finally:
        _slot.value = None


class SlotExecutor(ThreadPoolExecutor):
    """A thread pool that tells the job which scheduled slot it is running for."""

    def _do_submit_job(self, job: Any, run_times: list[Any]) -> None:
        def callback(f: Any) -> None:
            exc = f.exception()
            if exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, f.result())

        f = self._pool.submit(_run_in_slot, job, job._jobstore_alias, run_times, self._logger.name)
        f.add_done_callback(callback)


def current() -> str | None:
    """The slot of the scheduled run this thread is executing (None outside one)."""
    return getattr(_slot, "value", None)
