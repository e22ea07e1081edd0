"""A small Stack Exchange API client: timeouts, bounded retries, per-method backoff and quota.

The API asks clients to wait `backoff` seconds before calling the same method again, counts a
daily quota per key (10,000) or per IP (300), and answers errors as a wrapper with `error_id`,
`error_name` and `error_message` (throttling comes as error_id 502 inside an HTTP 400).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from triage.config import StackExchangeConfig
from triage.errors import QuotaExhausted, SourceError
from triage.logs import get_logger

log = get_logger("triage.stackexchange")

# Earliest wall-clock time each (api_url, method) may be called again. Kept at module level so
# every client and every source in the process honours a `backoff` it did not receive itself.
_NEXT_ALLOWED: dict[tuple[str, str], float] = {}
_LOCK = threading.Lock()
_AVAILABLE_IN = re.compile(r"available in (\d+) seconds?")
RETRY_BASE = 0.5


def next_allowed(api_url: str, method: str) -> float:
    with _LOCK:
        return _NEXT_ALLOWED.get((api_url, method), 0.0)


def note_backoff(api_url: str, method: str, until: float) -> None:
    """Remember that `method` may not be called before `until` (epoch seconds); never shorten."""
    with _LOCK:
        key = (api_url, method)
        _NEXT_ALLOWED[key] = max(_NEXT_ALLOWED.get(key, 0.0), until)


def next_utc_midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _human(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _Retry(Exception):
    """A failure worth another attempt after `delay` seconds."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class StackExchangeClient:
    """One httpx client reused for every call; tracks the quota it is told about."""

    def __init__(
        self,
        cfg: StackExchangeConfig,
        key: str | None = None,
        http: httpx.Client | None = None,
        retry_base: float = RETRY_BASE,
    ) -> None:
        self.cfg = cfg
        self.api_url = cfg.api_url.rstrip("/")
        self._key = key
        self.retry_base = retry_base
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(cfg.timeout),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip"},
            follow_redirects=True,
        )
        self.quota_remaining: int | None = None
        self.quota_max: int | None = None
        self._quota_reset: datetime | None = None
        self.requests = 0

    def close(self) -> None:
        self.http.close()

    # -- the one entry point -----------------------------------------------------------
    def get(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET `/{method}`; retries throttling, 5xx and timeouts, raises a one-line error else."""
        query = dict(params)
        if self._key:
            query["key"] = self._key
        attempts = self.cfg.max_retries + 1
        reason = ""
        for attempt in range(attempts):
            self._wait_backoff(method)
            self._check_quota()
            try:
                return self._call(method, query)
            except _Retry as exc:
                reason = str(exc)
                if attempt + 1 >= attempts:
                    break
                delay = exc.delay if exc.delay is not None else self._delay(attempt)
                log.warning("stackexchange.retry", method=method, reason=reason, wait=delay)
                self._sleep(delay, f"retrying {method} ({reason})")
        raise SourceError(
            f"Stack Exchange API {self.api_url}/{method} kept failing after {attempts} attempts"
            f" ({reason}); work committed so far is kept, re-run to continue"
        )

    def _call(self, method: str, query: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/{method}"
        self.requests += 1
        try:
            resp = self.http.get(url, params=query)
        except httpx.TimeoutException:
            raise _Retry(f"timed out after {self.cfg.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"cannot connect: {type(exc).__name__}") from None
        data = self._json(resp)
        if data is not None:
            self._track(method, data)
            if "error_id" in data:
                self._error(method, query, data)
        status = resp.status_code
        if status >= 500 or status == 429:
            raise _Retry(f"HTTP {status}")
        if status == 404:
            raise SourceError(
                f"Stack Exchange API not found at {url} (HTTP 404): check [stackexchange]"
                " api_url, which includes the version, e.g. https://api.stackexchange.com/2.3"
            )
        if status >= 300 or data is None:
            what = "an empty or non-JSON answer" if data is None else "no data"
            raise SourceError(f"Stack Exchange API {url} answered HTTP {status} with {what}")
        return data

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any] | None:
        try:
            data = resp.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    # -- rate limits ----------------------------------------------------------------
    def _track(self, method: str, data: dict[str, Any]) -> None:
        if data.get("backoff"):
            seconds = float(data["backoff"])
            log.info("stackexchange.backoff", method=method, seconds=seconds)
            note_backoff(self.api_url, method, time.time() + seconds)
        if "quota_remaining" in data:
            self.quota_remaining = int(data["quota_remaining"])
            self.quota_max = int(data.get("quota_max") or 0) or self.quota_max
            if self.quota_remaining <= 0:
                self._quota_reset = next_utc_midnight()

    def _wait_backoff(self, method: str) -> None:
        wait = next_allowed(self.api_url, method) - time.time()
        if wait <= 0:
            return
        if wait > self.cfg.max_backoff_wait:
            raise QuotaExhausted(
                f"Stack Exchange asked to wait {_human(wait)} before calling /{method} again,"
                f" longer than [stackexchange] max_backoff_wait ({self.cfg.max_backoff_wait:g}s);"
                " progress is saved: re-run the same command later to continue"
            )
        self._sleep(wait, f"honouring backoff for /{method}")

    def _check_quota(self) -> None:
        if self.quota_remaining is None or self.quota_remaining > 0 or self._quota_reset is None:
            return
        now = datetime.now(UTC)
        if now >= self._quota_reset:
            self.quota_remaining = None  # a new day: ask again
            return
        raise self._quota_error(self._quota_reset, now)

    def _quota_error(self, reset: datetime, now: datetime) -> QuotaExhausted:
        limit = f"{self.quota_max:,} requests" if self.quota_max else "requests"
        hint = "" if self._key else "; set STACKEXCHANGE_KEY to raise it from 300 to 10,000 a day"
        return QuotaExhausted(
            f"Stack Exchange API daily quota used up ({limit}); it resets at"
            f" {reset:%Y-%m-%d %H:%M} UTC (in {_human((reset - now).total_seconds())})."
            f" Progress is saved: re-run the same command then to continue{hint}"
        )

    def _delay(self, attempt: int) -> float:
        return min(self.retry_base * 2**attempt, max(self.cfg.max_backoff_wait, 0.0))

    @staticmethod
    def _sleep(seconds: float, why: str) -> None:
        if seconds > 0:
            log.debug("stackexchange.wait", seconds=round(seconds, 2), why=why)
            time.sleep(seconds)

    # -- errors ---------------------------------------------------------------------
    def _error(self, method: str, query: dict[str, Any], data: dict[str, Any]) -> None:
        error_id = int(data.get("error_id") or 0)
        name = str(data.get("error_name") or "")
        message = str(data.get("error_message") or "")
        what = f"{name}: {message}" if message else name
        if error_id == 502 or name == "throttle_violation":
            self._throttled(method, message)
        if error_id in (500, 503) or name in ("internal_error", "temporarily_unavailable"):
            raise _Retry(what)
        site = query.get("site")
        if error_id == 400 and "site" in message.lower() and site is not None:
            raise SourceError(
                f"unknown Stack Exchange site {site!r} ({message}): check --site or"
                " [stackexchange] site, e.g. stackoverflow, superuser, serverfault"
            )
        if error_id in (401, 402, 403, 405, 406) or (error_id == 400 and "key" in message):
            raise SourceError(
                f"Stack Exchange API refused the request to /{method} ({what}):"
                " check STACKEXCHANGE_KEY"
            )
        if error_id == 404:
            raise SourceError(
                f"Stack Exchange API has no method /{method} at {self.api_url} ({what}):"
                " check [stackexchange] api_url"
            )
        raise SourceError(f"Stack Exchange API rejected /{method} (error {error_id} {what})")

    def _throttled(self, method: str, message: str) -> None:
        """Throttled: wait the time the API names if it is short, else stop with state saved."""
        match = _AVAILABLE_IN.search(message)
        if match is None:  # e.g. "Violation of backoff parameter": back off and retry
            raise _Retry(f"throttle_violation: {message}")
        seconds = float(match.group(1))
        now = datetime.now(UTC)
        if seconds > self.cfg.max_backoff_wait:
            self.quota_remaining, self._quota_reset = 0, now + timedelta(seconds=seconds)
            raise self._quota_error(self._quota_reset, now)
        note_backoff(self.api_url, method, time.time() + seconds)
        raise _Retry(f"throttle_violation: {message}", delay=0.0)


def probe(cfg: StackExchangeConfig, key: str | None) -> StackExchangeClient:
    """A one-shot client for `triage doctor`: one retry at most, so a check answers fast."""
    return StackExchangeClient(cfg.model_copy(update={"max_retries": min(cfg.max_retries, 1)}), key)
