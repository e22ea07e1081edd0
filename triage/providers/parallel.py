"""Run independent model calls with at most N in flight, handing results back in one thread.

The caller's thread takes every result (so database writes and budget counting stay on one
thread), decides after each whether to go on, and is asked before each new call whether it
may start (a token budget reserves the call's estimate there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()  # the end of the tasks (a task may be anything, even None)


def run_bounded(
    tasks: Iterable[T],
    work: Callable[[T], R],
    concurrency: int,
    may_start: Callable[[T], bool] = lambda _: True,
) -> Iterator[tuple[T, R]]:
    """Yield (task, result) as calls finish; a task `may_start` refuses ends submission.

    Stopping the iteration early (break, or an exception in the consumer) sends nothing more;
    calls already in flight finish before this returns. Exceptions from `work` propagate.
    """
    pending = iter(tasks)
    if concurrency <= 1:
        for task in pending:
            if not may_start(task):
                return
            yield task, work(task)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm") as pool:
        running: dict[Future[R], T] = {}
        open_ = True
        try:
            while True:
                while open_ and len(running) < concurrency:
                    nxt = next(pending, _END)
                    if nxt is _END or not may_start(nxt):  # type: ignore[arg-type]
                        open_ = False
                        break
                    running[pool.submit(work, nxt)] = nxt  # type: ignore[arg-type,assignment]
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future.result()
        finally:
            for future in running:
                future.cancel()
