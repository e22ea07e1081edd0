"""A PyGithub client wrapped so every call honours GitHub's rate-limit signals.

PyGithub's own retry (urllib3 `GithubRetry`) is switched off: it reads rate limits only from 403
answers (a 429 is retried only with a Retry-After, a primary limit sent as 429 not at all), and
once retries run out it raises `requests.RetryError` rather than a GitHub error. `GitHubClient.call`
applies one policy instead: primary limits wait for the reset up to a cap, then stop with a
resumable QuotaExhausted; secondary limits and 5xx back off; every wait is bounded.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from github import Auth, Github, GithubException
from github.Requester import Requester
from requests.exceptions import ChunkedEncodingError

from triage.config import GitHubConfig
from triage.errors import QuotaExhausted, SourceError
from triage.logs import get_logger

log = get_logger("triage.github")
T = TypeVar("T")
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class BadAnswer(Exception):
    """A 2xx answer whose body is not what the endpoint returns."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    max_rate_limit_wait: float = 900.0
    retry_backoff: float = 1.0
    secondary_rate_wait: float = 60.0


@dataclass
class ListPage:
    """One page of a listing: its JSON, headers and how many HTTP requests it took.

    `not_modified` is a 304 to a conditional request: no body, the page is as it was when the
    ETag sent was recorded.
    """

    data: list[dict[str, Any]]
    headers: dict[str, Any]
    requests: int
    not_modified: bool = False

    @property
    def quota_remaining(self) -> int | None:
        value = self.headers.get("x-ratelimit-remaining")
        return int(float(value)) if value is not None else None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


class GitHubClient:
    """A PyGithub `Github` plus the retry and rate-limit policy every request goes through."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        per_page: int = 100,
        policy: RetryPolicy | None = None,
        seconds_between_writes: float | None = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.authenticated = bool(token)
        self.policy = policy or RetryPolicy()
        self.per_page = per_page
        self.requests = 0
        self._sleep = sleep
        self.github = Github(
            auth=Auth.Token(token) if token else None,
            base_url=self.api_url,
            timeout=max(math.ceil(timeout), 1),  # PyGithub insists on whole seconds
            per_page=per_page,
            retry=None,
            # PyGithub sleeps 0.25 s before every request by default; reads need no pause.
            seconds_between_requests=None,
            # GitHub asks for a second between content-creating writes (secondary limits).
            seconds_between_writes=seconds_between_writes,
            user_agent="triage",
        )

    @property
    def requester(self) -> Requester:
        return self.github.requester

    # -- the one retry loop ---------------------------------------------------------------
    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run one PyGithub call with timeouts, bounded retries and rate-limit waits.

        Every wait of one call counts against `max_rate_limit_wait` as a total: a limit that
        lasts longer stops the run (resumable) rather than waiting past the cap.
        """
        attempt, waited = 0, 0.0
        while True:
            self._wait_for_reset(what)
            self.requests += 1
            unreachable = False
            try:
                return fn()
            except GithubException as exc:
                wait, reason = self._retry_wait(exc, attempt, what)
            except (requests.ConnectionError, requests.Timeout) as exc:
                wait = self.policy.retry_backoff * 2**attempt
                reason = f"{type(exc).__name__} talking to {self.api_url}"
                unreachable = True
            except (BadAnswer, json.JSONDecodeError, ChunkedEncodingError) as exc:
                # A cut-off or non-JSON body (a proxy's error page): as transient as a 502.
                wait = self.policy.retry_backoff * 2**attempt
                reason = f"unreadable answer: {str(exc)[:80]}"
            attempt += 1
            if attempt > self.policy.max_retries:
                raise self._gave_up(what, reason, unreachable)
            if waited + wait > self.policy.max_rate_limit_wait:
                raise self._waited_too_long(what, reason, waited)
            log.warning("github retry", what=what, reason=reason, wait=round(wait, 2))
            self._sleep(wait)
            waited += wait

    def get(
        self, url: str, params: dict[str, Any] | None, what: str, etag: str | None = None
    ) -> ListPage:
        """GET a JSON list (relative path or an absolute Link URL).

        With `etag`, the request is conditional (If-None-Match): a 304 comes back as a page
        with `not_modified` set and no data. GitHub does not count an authorized 304 against
        the primary rate limit ("Use conditional requests if appropriate",
        https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
        """
        before = self.requests
        if etag is None:
            headers, data = self.call(lambda: self._get_list(url, params), what)
            return ListPage(data, headers, self.requests - before)
        status, headers, data = self.call(lambda: self._get_if_changed(url, params, etag), what)
        return ListPage(data, headers, self.requests - before, not_modified=status == 304)

    def _get_list(self, url: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
        headers, data = self.requester.requestJsonAndCheck("GET", url, parameters=params)
        return headers, _listed(data)

    def _get_if_changed(
        self, url: str, params: dict[str, Any] | None, etag: str
    ) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        """A conditional GET, the way PyGithub's own `GithubObject.update` makes one.

        `requestJsonAndCheck` hides the status (a 304 would look like an empty 200), so this
        goes one level down: `requestJson` returns it, and errors are raised as PyGithub does.
        """
        status, headers, body = self.requester.requestJson(
            "GET", url, parameters=params, headers={"If-None-Match": etag}
        )
        if status == 304:
            return status, headers, []
        if status >= 400:
            raise Requester.createException(status, headers, _error_body(body))
        return status, headers, _listed(json.loads(body) if body else None)

    def request_key(self, url: str, params: dict[str, Any] | None = None) -> str:
        """One spelling of a GET (absolute URL, sorted query): what an ETag is stored under."""
        parts = urlsplit(url if "://" in url else self.api_url + url)
        query = sorted([*parse_qsl(parts.query), *((k, str(v)) for k, v in (params or {}).items())])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    def paginate(self, path: str, params: dict[str, Any], what: str) -> Iterator[ListPage]:
        """Follow rel="next" Link headers: one request per page, nothing else."""
        page = self.get(path, {**params, "per_page": self.per_page}, what)
        while True:
            yield page
            nxt = next_link(page.headers)
            if nxt is None:
                return
            page = self.get(nxt, None, what)

    # -- policy ---------------------------------------------------------------------------
    def _retry_wait(self, exc: GithubException, attempt: int, what: str) -> tuple[float, str]:
        """Seconds to wait before retrying, or raise when a retry cannot help."""
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        message = error_message(exc)
        reason = f"{exc.status} {message}".strip()
        if exc.status == 401:
            raise self.auth_error(what) from None
        if exc.status in (403, 429):
            if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
                reset = float(headers["x-ratelimit-reset"])
                return self._primary_wait(reset, what), "primary rate limit"
            if "retry-after" in headers:
                wait = float(headers["retry-after"])
                if wait > self.policy.max_rate_limit_wait:
                    raise self._quota_error(time.time() + wait, what) from None
                return wait, f"secondary rate limit ({reason})"
            if exc.status == 429 or Requester.isRateLimitError(message):
                return self.policy.secondary_rate_wait * 2**attempt, f"rate limited ({reason})"
            raise exc
        if exc.status >= 500:
            return self.policy.retry_backoff * 2**attempt, reason
        raise exc

    def _gave_up(self, what: str, reason: str, unreachable: bool) -> SourceError:
        tries = f"{self.policy.max_retries + 1} attempts"
        if unreachable:
            return SourceError(
                f"cannot reach the GitHub API at {self.api_url} ({reason.split()[0]}, {tries}):"
                " check [github] api_url and the network; progress so far is saved"
            )
        return SourceError(
            f"GitHub API kept failing for {what} ({reason}) after {tries};"
            " progress so far is saved, re-run later to continue"
        )

    def _waited_too_long(self, what: str, reason: str, waited: float) -> QuotaExhausted:
        return QuotaExhausted(
            f"GitHub kept refusing {what} ({reason}) after {waited:.0f}s of waiting; the next"
            f" wait would pass [github] max_rate_limit_wait ({self.policy.max_rate_limit_wait:g}s"
            " in total); progress is saved, re-run later to continue"
        )

    def _primary_wait(self, reset: float, what: str) -> float:
        # One second past the reset: GitHub does not say when within that second it happens.
        wait = max(reset - time.time(), 0.0) + 1.0
        if wait > self.policy.max_rate_limit_wait:
            raise self._quota_error(reset, what)
        return wait

    def _wait_for_reset(self, what: str) -> None:
        """The last answer said no requests are left: wait for the reset (or stop) up front."""
        remaining, _limit = self.requester.rate_limiting
        reset = self.requester.rate_limiting_resettime
        if remaining == 0 and reset and reset > time.time():
            wait = self._primary_wait(reset, what)
            log.warning("github rate limit reached; waiting for reset", seconds=round(wait, 1))
            self._sleep(wait)
            # The next answer brings fresh numbers; until then assume the reset happened.
            self.requester.rate_limiting = (-1, -1)

    def _quota_error(self, reset: float, what: str) -> QuotaExhausted:
        at = datetime.fromtimestamp(reset, UTC)
        minutes = max(reset - time.time(), 0) / 60
        hint = "" if self.authenticated else "; setting GITHUB_TOKEN raises the hourly limit"
        return QuotaExhausted(
            f"GitHub API rate limit used up while fetching {what}: it resets at"
            f" {at:%Y-%m-%d %H:%M:%S} UTC (in {minutes:.0f} min), beyond [github]"
            f" max_rate_limit_wait ({self.policy.max_rate_limit_wait:g}s); progress is saved,"
            f" re-run the same command after the reset to continue{hint}"
        )

    def auth_error(self, what: str) -> SourceError:
        if self.authenticated:
            return SourceError(
                f"GitHub rejected the token in GITHUB_TOKEN (401 Bad credentials) while fetching"
                f" {what}: it is wrong, expired or revoked; set a valid GITHUB_TOKEN"
            )
        return SourceError(f"GitHub requires authentication for {what} (401): set GITHUB_TOKEN")

    def rate_limit(self) -> dict[str, Any]:
        """GET /rate_limit (free: it does not count against the limit)."""
        _headers, data = self.call(
            lambda: self.requester.requestJsonAndCheck("GET", "/rate_limit"), "the rate limit"
        )
        return dict(data.get("resources", {}).get("core") or data.get("rate") or {})


def _error_body(body: str) -> dict[str, Any]:
    """An error answer's JSON, or its text as PyGithub keeps a non-JSON one (an HTML 502)."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {"data": body}
    return data if isinstance(data, dict) else {"data": data}


def _listed(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise BadAnswer(f"expected a JSON list, got {str(data)[:60]!r}")
    return data


def next_link(headers: dict[str, Any]) -> str | None:
    match = _NEXT.search(headers.get("link") or "")
    return match.group(1) if match else None


def error_message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        return str(data.get("message") or "")
    return str(data or "")[:200]


def from_config(cfg: GitHubConfig, token: str | None) -> GitHubClient:
    """The client every feature shares, from [github] and GITHUB_TOKEN (the Context builds it)."""
    return GitHubClient(
        cfg.api_url,
        token,
        timeout=cfg.timeout,
        per_page=cfg.per_page,
        policy=RetryPolicy(
            max_retries=cfg.max_retries,
            max_rate_limit_wait=cfg.max_rate_limit_wait,
            retry_backoff=cfg.retry_backoff,
            secondary_rate_wait=cfg.secondary_rate_wait,
        ),
    )


def probe(cfg: GitHubConfig, token: str | None) -> GitHubClient:
    """A one-shot client for `triage doctor`: no retries and no waits, so a check answers fast."""
    return GitHubClient(
        cfg.api_url,
        token,
        timeout=min(cfg.timeout, 10.0),
        policy=RetryPolicy(max_retries=0, max_rate_limit_wait=0),
    )
