"""Quiet syncs: conditional requests against the fake GitHub, which answers ETags and 304s."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.github import FakeGitHub
from tests.integration.github_env import gh, item_count, make_ctx, stored
from triage import ingest
from triage.clients.github import GitHubClient
from triage.context import Context
from triage.db import store
from triage.errors import SourceError
from triage.ingest import RunStats
from triage.sources.github import make_sources

__all__ = ["gh"]  # the fixture

FAST: dict[str, Any] = {"retry_backoff": 0.01, "secondary_rate_wait": 0.01, "max_retries": 1}


def sync_all(ctx: Context, spec: str) -> dict[str, RunStats]:
    """One `triage sync` pass over a configured spec (`org/*` or `owner/repo`)."""
    return {
        source.name: ingest.run(ctx.sessions, source, ingest.sync_cursor_name(source))
        for source in make_sources(ctx, [spec], conditional=True)
    }


def cursors(ctx: Context) -> dict[str, tuple[str | None, dict[str, Any]]]:
    with ctx.sessions() as s:
        return {c.name: (c.value, dict(c.state)) for c in store.all_cursors(s)}


def issue_listings(gh: FakeGitHub) -> list[Any]:
    return gh.requests_to(r"/repos/acme/[^/]+/issues$")


@pytest.fixture
def org(gh: FakeGitHub) -> FakeGitHub:
    for n in range(3):
        gh.add_repo(f"acme/repo{n}", issues=30, org=True)
    return gh


def test_a_quiet_sync_is_one_free_304_per_repository(org: FakeGitHub, db_url: str) -> None:
    ctx = make_ctx(org.base_url, db_url)
    first = sync_all(ctx, "acme/*")
    assert sum(s.items for s in first.values()) == 90
    before, spent, items = cursors(ctx), org.spent, item_count(ctx)
    org.requests.clear()

    again = sync_all(ctx, "acme/*")

    # One conditional request per repository (plus the repository listing's one page), each
    # answered 304: nothing spent, nothing stored, every cursor and its ETag as they were.
    listings = issue_listings(org)
    assert len(listings) == 3 and all("if-none-match" in r.headers for r in listings)
    assert org.requests_received == 4 and org.not_modified == 4
    assert org.spent == spent
    assert all(s.not_modified and s.items == 0 and s.requests == 1 for s in again.values())
    assert item_count(ctx) == items and cursors(ctx) == before


def test_a_change_after_a_quiet_sync_is_fetched(org: FakeGitHub, db_url: str) -> None:
    ctx = make_ctx(org.base_url, db_url)
    sync_all(ctx, "acme/*")
    sync_all(ctx, "acme/*")
    org.edit_issue("acme/repo1", 4, title="Edited after the quiet sync")
    org.add_issue("acme/repo2", "Brand new", "details")
    spent = org.spent
    org.requests.clear()

    stats = sync_all(ctx, "acme/*")

    # The ETags of repo1 and repo2 no longer match: one 200 each holds the change.
    assert stats["github:acme/repo0"].not_modified
    assert (stats["github:acme/repo1"].updated, stats["github:acme/repo2"].new) == (1, 1)
    assert len(issue_listings(org)) == 3
    # The repository listing changed too (each repository's `updated_at` moved).
    assert org.spent - spent == 3
    items = stored(ctx)
    assert items["github:acme/repo1#4"].title == "Edited after the quiet sync"
    assert items["github:acme/repo2#31"].title == "Brand new"

    org.requests.clear()
    assert all(s.not_modified for s in sync_all(ctx, "acme/*").values())


def test_more_changes_than_one_page_are_listed_from_the_cursor(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_repo("octo/hello", issues=12)
    ctx = make_ctx(gh.base_url, sqlite_url, per_page=10)
    sync_all(ctx, "octo/hello")
    for n in range(1, 13):
        gh.edit_issue("octo/hello", n, title=f"Edited {n}")
    gh.add_issue("octo/hello", "Brand new")
    gh.requests.clear()

    (stats,) = sync_all(ctx, "octo/hello").values()

    # 13 changes, 10 a page: the check's page cannot hold them, so the listing runs from the
    # cursor (13 changes and the item at the cursor: 2 pages) after the check's request.
    assert stats.requests == 3 == len(gh.requests)
    assert gh.requests[1].query["since"] and gh.requests[1].query["direction"] == ["asc"]
    assert (stats.new, stats.updated) == (1, 12)
    assert all(i.title.startswith(("Edited", "Brand")) for i in stored(ctx).values())

    gh.requests.clear()
    (quiet,) = sync_all(ctx, "octo/hello").values()
    assert quiet.not_modified and len(gh.requests) == 1


def test_an_interrupted_listing_never_leaves_an_etag_ahead_of_stored_items(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_repo("octo/hello", issues=5)
    ctx = make_ctx(gh.base_url, sqlite_url, per_page=10, **FAST)
    sync_all(ctx, "octo/hello")
    for n in range(25):
        gh.add_issue("octo/hello", f"New {n}")
    # The listing's later pages (Link URLs, /repositories/ID/issues) keep failing.
    gh.server_error(times=2, path="/repositories/")

    with pytest.raises(SourceError, match="kept failing"):
        sync_all(ctx, "octo/hello")
    # The listing's first page is stored with its cursor (the item at the cursor, 9 new).
    assert item_count(ctx) == 5 + 9
    ((_value, state),) = cursors(ctx).values()
    assert "etag" not in state

    (stats,) = sync_all(ctx, "octo/hello").values()

    # The check was made without an ETag, so it could not answer 304 over the missing items.
    assert "if-none-match" not in gh.requests[-3].headers
    assert stats.done and not stats.not_modified and item_count(ctx) == 30


def test_org_expansion_sends_each_pages_etag(gh: FakeGitHub, sqlite_url: str) -> None:
    for n in range(130):
        gh.add_repo(f"acme/repo{n}", org=True)
    gh.repo("acme/repo7").has_issues = False
    gh.add_repo("alice/tools")
    ctx = make_ctx(gh.base_url, sqlite_url)
    first = [s.name for s in make_sources(ctx, ["acme/*", "alice/*"])]
    spent = gh.spent
    gh.requests.clear()

    again = [s.name for s in make_sources(ctx, ["acme/*", "alice/*"])]

    # Both pages answered 304 and their repositories came from what was saved with the ETags;
    # alice is a user, so her organization listing (a 404, which costs) is not asked again.
    assert again == first and len(again) == 130
    pages = gh.requests_to("/orgs/acme/repos")
    assert len(pages) == 2 and all("if-none-match" in r.headers for r in pages)
    assert not gh.requests_to("/orgs/alice/repos") and gh.requests_to("/users/alice/repos")
    assert gh.not_modified == 3 and gh.spent == spent

    gh.add_repo("acme/late", org=True)
    assert "github:acme/late" in [s.name for s in make_sources(ctx, ["acme/*"])]


def test_the_fake_counts_304s_as_github_does(gh: FakeGitHub) -> None:
    gh.add_repo("octo/hello", issues=3)
    path = "/repos/octo/hello/issues"
    for token, cost in (("ghp_valid", 0), (None, 1)):
        client = GitHubClient(gh.base_url, token)
        first = client.get(path, {"state": "all"}, "the issues")
        assert first.etag and first.etag.startswith('W/"') and len(first.data) == 3
        spent = gh.spent

        again = client.get(path, {"state": "all"}, "the issues", etag=first.etag)

        # An authorized 304 costs nothing; one without a token counts like any request.
        assert again.not_modified and again.data == [] and gh.spent - spent == cost
        assert again.quota_remaining == (first.quota_remaining or 0) - cost
        assert "link" not in again.headers and again.etag == first.etag
        other = client.get(path, {"state": "open"}, "the issues", etag=first.etag)
        assert not other.not_modified and other.etag != first.etag
