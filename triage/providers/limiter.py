"""One rate limiter shared by every worker of a provider: requests and tokens per minute.

Each call waits until it fits in the last minute's window of requests and tokens. A 429 pauses
every worker (not just the one that got it) for the delay the server asked for or a backoff.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0  # seconds: limits are per minute


class RateLimiter:
    """Sliding one-minute window of (time, tokens); `rpm`/`tpm` 0 means no limit."""

    def __init__(
        self,
        rpm: int,
        tpm: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpm, self.tpm = rpm, tpm
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._sent: deque[tuple[float, int]] = deque()
        self._paused_until = 0.0
        self.waited = 0.0  # seconds spent waiting, for benchmarks and logs

    def _wait_needed(self, now: float, tokens: int) -> float:
        while self._sent and self._sent[0][0] <= now - WINDOW:
            self._sent.popleft()
        waits = [self._paused_until - now]
        if self.rpm and len(self._sent) >= self.rpm:
            waits.append(self._sent[len(self._sent) - self.rpm][0] + WINDOW - now)
        if self.tpm and self._sent:
            used = sum(t for _, t in self._sent)
            # A call bigger than the whole limit goes alone into an empty window.
            need = min(tokens, self.tpm)
            excess = used + need - self.tpm
            for at, t in self._sent:
                if excess <= 0:
                    break
                excess -= t
                waits.append(at + WINDOW - now)
        return max(waits)

    def acquire(self, tokens: int = 0) -> None:
        """Block until one more call of `tokens` input tokens fits, then count it."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now, tokens)
                if wait <= 0:
                    self._sent.append((now, tokens))
                    return
            self.waited += wait
            self._sleep(min(wait, WINDOW))

    def pause(self, seconds: float) -> None:
        """After a 429: no worker sends anything for `seconds`."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


class SimulatedClock:
    """Time that passes only by sleeping: for a provider given its own `sleep` (tests, dry runs).

    A limiter on the real clock with a sleep that does not sleep would spin; this keeps the two
    consistent.
    """

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self._now = 0.0
        self._sleep = sleep
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
        self._sleep(seconds)
