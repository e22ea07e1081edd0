"""Rate limits, retries and refusals: every path ends in success or one clear error, state kept."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import pytest

from tests.fakes.github import FakeGitHub
from tests.fakes.server import Response
from tests.integration.github_env import backfill, gh, item_count, make_ctx
from triage.db import store
from triage.errors import ConfigError, QuotaExhausted, SourceError
from triage.sources.github import make_sources

__all__ = ["gh"]  # the fixture

FAST: dict[str, Any] = {"retry_backoff": 0.01, "secondary_rate_wait": 0.01, "max_retries": 3}
ISSUE_200 = "2020-01-09T08:30:00Z"  # updated_at of issue 200, the end of page 2


def saved_cursor(ctx: Any) -> str | None:
    with ctx.sessions() as s:
        row = store.get_cursor(s, "backfill:github:octo/hello")
        return row.value if row else None


@pytest.fixture
def repo(gh: FakeGitHub) -> FakeGitHub:
    gh.add_repo("octo/hello", issues=450)
    return gh


def test_primary_limit_spent_mid_listing_waits_for_the_reset(
    repo: FakeGitHub, sqlite_url: str
) -> None:
    repo.used = repo.limit - 2
    repo.reset_at = time.time() + 1
    reset = int(repo.reset_at)
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    stats = backfill(ctx)

    assert stats.done and item_count(ctx) == 450
    # The headers said 0 left after page 2: the client waited instead of spending a request.
    assert len(repo.requests) == 5
    assert repo.arrivals[2] >= reset


@pytest.mark.parametrize("status", [403, 429])
def test_primary_limit_refusal_is_waited_out(
    repo: FakeGitHub, sqlite_url: str, status: int
) -> None:
    repo.exhaust(reset_in=1, status=status)
    reset = int(repo.reset_at)
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    stats = backfill(ctx)

    assert stats.done and item_count(ctx) == 450
    assert len(repo.requests) == 6  # the refused one, then the 5 pages
    assert repo.arrivals[1] >= reset


def test_primary_limit_beyond_the_cap_stops_with_the_cursor_saved(
    repo: FakeGitHub, sqlite_url: str
) -> None:
    repo.used = repo.limit - 2
    repo.reset_at = time.time() + 3600
    ctx = make_ctx(repo.base_url, sqlite_url, max_rate_limit_wait=60, **FAST)

    with pytest.raises(QuotaExhausted) as err:
        backfill(ctx)

    message = str(err.value)
    assert "resets at" in message and "re-run" in message and "\n" not in message
    assert item_count(ctx) == 200 and saved_cursor(ctx) == ISSUE_200
    assert len(repo.requests) == 2

    repo.reset_at = time.time() - 1  # the hour has passed
    fresh = make_ctx(repo.base_url, sqlite_url, **FAST)
    assert backfill(fresh).done and item_count(fresh) == 450
    assert repo.requests[2].query["since"] == [ISSUE_200]


@pytest.mark.parametrize(("status", "retry_after"), [(403, 1), (403, None), (429, 1), (429, None)])
def test_secondary_limits_back_off_and_retry(
    repo: FakeGitHub, sqlite_url: str, status: int, retry_after: int | None
) -> None:
    repo.secondary_limit(status=status, retry_after=retry_after, path="/repositories/")
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    stats = backfill(ctx)

    assert stats.done and item_count(ctx) == 450
    assert len(repo.requests) == 6 and stats.requests == 6
    if retry_after:
        assert repo.arrivals[2] - repo.arrivals[1] >= retry_after


def test_retry_after_beyond_the_cap_stops_cleanly(repo: FakeGitHub, sqlite_url: str) -> None:
    repo.secondary_limit(retry_after=7200, path="/repositories/")
    ctx = make_ctx(repo.base_url, sqlite_url, max_rate_limit_wait=600, **FAST)

    with pytest.raises(QuotaExhausted, match="max_rate_limit_wait"):
        backfill(ctx)
    assert item_count(ctx) == 100


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(repo: FakeGitHub, sqlite_url: str, status: int) -> None:
    repo.server_error(times=2, status=status)
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    stats = backfill(ctx)

    assert stats.done and item_count(ctx) == 450 and len(repo.requests) == 7


def test_persistent_server_errors_give_up_with_state_saved(
    repo: FakeGitHub, sqlite_url: str
) -> None:
    repo.server_error(times=100, path="/repositories/")
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    with pytest.raises(SourceError) as err:
        backfill(ctx)

    assert "502" in str(err.value) and "after 4 attempts" in str(err.value)
    assert len(repo.requests) == 1 + 4
    assert item_count(ctx) == 100 and saved_cursor(ctx) == "2020-01-05T04:30:00Z"


def test_forbidden_without_rate_limit_is_not_retried(repo: FakeGitHub, sqlite_url: str) -> None:
    repo.fail(r"/issues$", 403, "Resource not accessible by integration")
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    with pytest.raises(SourceError, match="Resource not accessible"):
        backfill(ctx)
    assert len(repo.requests) == 1


def test_unknown_repository_is_one_line_naming_it(gh: FakeGitHub, sqlite_url: str) -> None:
    ctx = make_ctx(gh.base_url, sqlite_url, **FAST)

    with pytest.raises(SourceError) as err:
        backfill(ctx, "octo/nope")

    assert "octo/nope not found (404)" in str(err.value) and "\n" not in str(err.value)
    assert len(gh.requests) == 1


def test_revoked_token_names_github_token_and_hides_it(repo: FakeGitHub, sqlite_url: str) -> None:
    repo.revoked_tokens.add("ghp_revoked0123")
    ctx = make_ctx(repo.base_url, sqlite_url, token="ghp_revoked0123", **FAST)

    with pytest.raises(SourceError) as err:
        backfill(ctx)

    message = str(err.value)
    assert "GITHUB_TOKEN" in message and "401" in message and "ghp_revoked0123" not in message
    assert len(repo.requests) == 1


def test_missing_token_where_required_asks_for_one(repo: FakeGitHub, sqlite_url: str) -> None:
    repo.require_auth = True
    ctx = make_ctx(repo.base_url, sqlite_url, token=None, **FAST)

    with pytest.raises(SourceError, match=r"requires authentication.*set GITHUB_TOKEN"):
        backfill(ctx)


def test_unreachable_api_gives_up_naming_the_url(sqlite_url: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    ctx = make_ctx(url, sqlite_url, **FAST)

    with pytest.raises(SourceError, match=re.escape(f"cannot reach the GitHub API at {url}")):
        backfill(ctx)


def test_unknown_owner_and_bad_repo_specs(gh: FakeGitHub, sqlite_url: str) -> None:
    ctx = make_ctx(gh.base_url, sqlite_url, **FAST)

    with pytest.raises(SourceError, match="'ghost' not found"):
        make_sources(ctx, ["ghost/*"])
    with pytest.raises(ConfigError, match="OWNER/REPO"):
        make_sources(ctx, ["just-a-name"])


def test_an_unreadable_answer_is_retried(repo: FakeGitHub, sqlite_url: str) -> None:
    repo.add_fault(Response(200, '[{"number": 1, "tit'), path="/repositories/")
    repo.add_fault(Response(200, "<html>proxy error</html>", content_type="text/html"))
    ctx = make_ctx(repo.base_url, sqlite_url, **FAST)

    stats = backfill(ctx)

    assert stats.done and item_count(ctx) == 450 and len(repo.requests) == 7
