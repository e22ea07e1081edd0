"""The GitHub source against the fake GitHub API, stored through the real ingest driver."""

from __future__ import annotations

import threading

from tests.fakes.github import FakeGitHub
from tests.integration.github_env import (
    backfill,
    gh,
    item_count,
    make_ctx,
    stored,
    sync,
)
from triage import ingest
from triage.db import store
from triage.ingest import RunStats
from triage.sources.github import make_sources

__all__ = ["gh"]  # the fixture


def test_backfill_pages_through_every_issue_and_skips_pull_requests(
    gh: FakeGitHub, db_url: str
) -> None:
    gh.add_repo("octo/hello", issues=450, prs_every=10)
    ctx = make_ctx(gh.base_url, db_url)

    stats = backfill(ctx)

    items = stored(ctx)
    assert len(items) == 405 and stats.skipped == 45 and stats.done
    assert all(not i.is_pull_request and i.number % 10 for i in items.values())
    # 450 listed issues cost ceil(450 / 100) requests, and nothing else was asked for.
    assert len(gh.requests) == 5 == stats.requests
    for req in gh.requests:
        assert req.path.endswith("/issues")
        if "page" not in req.query:
            assert req.query == {
                "state": ["all"],
                "sort": ["updated"],
                "direction": ["asc"],
                "per_page": ["100"],
            }
    with ctx.sessions() as s:
        cursor = store.get_cursor(s, "backfill:github:octo/hello")
        assert cursor is not None and cursor.value == "2020-01-19T18:30:00Z"


def test_stored_fields_come_from_the_listing(gh: FakeGitHub, db_url: str) -> None:
    gh.add_repo("octo/hello")
    gh.add_issue(
        "octo/hello",
        "Crash & burn <b>",
        "body text",
        user="alice",
        labels=["bug", "p1"],
        assignees=["bob", "carol"],
        milestone="v2",
        comments=3,
        reactions=5,
    )
    gh.edit_issue("octo/hello", 1, state="closed", state_reason="not_planned")
    ctx = make_ctx(gh.base_url, db_url)

    backfill(ctx)

    item = stored(ctx)["github:octo/hello#1"]
    assert (item.title, item.body, item.author) == ("Crash & burn <b>", "body text", "alice")
    assert (item.state, item.state_reason) == ("closed", "not_planned")
    assert item.labels == ["bug", "p1"] and item.assignees == ["bob", "carol"]
    assert (item.milestone, item.comments, item.reactions) == ("v2", 3, 5)
    assert item.url == "https://github.com/octo/hello/issues/1"
    assert item.closed_at is not None and item.updated_at >= item.created_at
    assert item.extra["reactions"] == {"+1": 5}
    assert item.content_hash and item.scope == "octo/hello"


def test_pull_requests_are_kept_when_configured(gh: FakeGitHub, db_url: str) -> None:
    gh.add_repo("octo/hello", issues=30, prs_every=10)
    ctx = make_ctx(gh.base_url, db_url, include_pull_requests=True)

    stats = backfill(ctx)

    items = stored(ctx)
    assert len(items) == 30 and stats.skipped == 0
    assert {i.number for i in items.values() if i.is_pull_request} == {10, 20, 30}
    assert items["github:octo/hello#10"].url.endswith("/pull/10")


def test_listing_n_issues_costs_ceil_n_over_100_requests(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_repo("octo/hello", issues=1000, prs_every=7)
    ctx = make_ctx(gh.base_url, sqlite_url)

    stats = backfill(ctx)

    assert stats.items + stats.skipped == 1000
    assert len(gh.requests) == 10
    # No per-issue requests: PyGithub objects would fetch /issues/N to read `pull_request`.
    assert not gh.requests_to(r"/issues/\d+")


def test_incremental_sync_fetches_only_what_changed(gh: FakeGitHub, db_url: str) -> None:
    gh.add_repo("octo/hello", issues=250)
    ctx = make_ctx(gh.base_url, db_url)
    backfill(ctx)
    gh.requests.clear()
    gh.edit_issue("octo/hello", 3, title="Crash on start (edited)")
    gh.edit_issue("octo/hello", 120, state="closed", state_reason="completed")
    gh.add_issue("octo/hello", "Brand new", "details")
    gh.add_issue("octo/hello", "A pull request", is_pr=True)

    stats = sync(ctx)

    # One request: the newest changes reach back past the cursor the backfill left (the item
    # at the cursor comes back once), so nothing is listed from the cursor.
    assert len(gh.requests) == 1
    assert gh.requests[0].query["direction"] == ["desc"] and "since" not in gh.requests[0].query
    assert (stats.new, stats.updated, stats.unchanged, stats.skipped) == (1, 2, 1, 1)
    items = stored(ctx)
    assert len(items) == 251
    assert items["github:octo/hello#3"].title == "Crash on start (edited)"
    assert items["github:octo/hello#120"].state == "closed"

    gh.requests.clear()
    again = sync(ctx)
    assert len(gh.requests) == 1 and again.new == again.updated == 0


def test_rerunning_a_backfill_adds_no_duplicates_and_applies_updates(
    gh: FakeGitHub, db_url: str
) -> None:
    gh.add_repo("octo/hello", issues=150)
    ctx = make_ctx(gh.base_url, db_url)
    backfill(ctx)
    gh.edit_issue("octo/hello", 5, title="Renamed", labels=["question"])

    stats = backfill(ctx)

    assert item_count(ctx) == 150
    assert stats.updated == 1 and stats.new == 0
    item = stored(ctx)["github:octo/hello#5"]
    assert (item.title, item.labels) == ("Renamed", ["question"])


def test_backfill_since_starts_at_that_date(gh: FakeGitHub, sqlite_url: str) -> None:
    from datetime import datetime

    gh.add_repo("octo/hello", issues=100)
    ctx = make_ctx(gh.base_url, sqlite_url)
    (source,) = make_sources(ctx, ["octo/hello"])
    since = datetime(2020, 1, 4)  # issue N is updated at 2020-01-01 + N h + 30 min

    ingest.run(ctx.sessions, source, ingest.backfill_cursor_name(source, since), since=since)

    assert gh.requests[0].query["since"] == ["2020-01-04T00:00:00Z"]
    assert {i.number for i in stored(ctx).values()} == set(range(72, 101))


def test_limit_stops_early_and_the_next_run_continues(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_repo("octo/hello", issues=350)
    ctx = make_ctx(gh.base_url, sqlite_url)

    first = backfill(ctx, limit=150)
    assert not first.done and item_count(ctx) == 200

    rest = backfill(ctx)
    assert rest.done and item_count(ctx) == 350
    assert gh.requests[2].query["since"] == ["2020-01-09T08:30:00Z"]  # issue 200's update


def test_org_wildcard_expands_to_its_repositories(gh: FakeGitHub, sqlite_url: str) -> None:
    for n in range(130):
        gh.add_repo(f"acme/repo{n}", org=True)
    gh.repo("acme/repo7").has_issues = False
    gh.add_repo("alice/tools")
    gh.add_repo("alice/notes")
    ctx = make_ctx(gh.base_url, sqlite_url)

    names = [s.name for s in make_sources(ctx, ["acme/*", "alice/*", "acme/repo1"])]

    assert len(names) == 131 and "github:acme/repo7" not in names
    assert names[-2:] == ["github:alice/tools", "github:alice/notes"]
    assert len(gh.requests_to("/orgs/acme/repos")) == 2  # 130 repositories, 100 a page
    assert gh.requests_to("/users/alice/repos")  # not an org: the user's repositories


def test_enterprise_base_url_with_a_path_prefix(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_repo("octo/hello", issues=250)
    gh.add_repo("corp/one", org=True)
    ctx = make_ctx(gh.ghe_url, sqlite_url)

    make_sources(ctx, ["corp/*"])
    stats = backfill(ctx)

    assert stats.items == 250 and stats.done
    assert all(r.path.startswith("/api/v3/") for r in gh.requests)
    # Link headers point at /api/v3/repositories/ID/issues; PyGithub must accept them.
    assert len(gh.requests_to(r"^/api/v3/repositories/\d+/issues$")) == 2


def test_the_token_is_sent_and_unauthenticated_use_works(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_repo("octo/hello", issues=5)
    backfill(make_ctx(gh.base_url, sqlite_url))
    assert gh.requests[-1].headers["authorization"].endswith("ghp_valid")

    gh.requests.clear()
    stats = backfill(make_ctx(gh.base_url, sqlite_url.replace(".db", "2.db"), token=None))
    assert stats.items == 5 and "authorization" not in gh.requests[0].headers


def test_an_issue_updated_mid_listing_does_not_hide_another(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_repo("octo/hello", issues=450)
    ctx = make_ctx(gh.base_url, sqlite_url)
    hold = gh.hold(r"/issues$", after=2)  # page 3 waits while issue 5 (page 1) is edited
    result: list[RunStats] = []
    worker = threading.Thread(target=lambda: result.append(backfill(ctx)))
    worker.start()
    assert hold.reached.wait(timeout=30)
    # Issue 5 jumps to the end of the listing: everything behind it shifts back by one, so
    # page 3 now starts at issue 202 and issue 201 would slip through unseen.
    gh.edit_issue("octo/hello", 5, title="Edited while listing")
    hold.release()
    worker.join(timeout=60)

    assert result and result[0].done
    items = stored(ctx)
    assert len(items) == 450 and "github:octo/hello#201" in items
    assert items["github:octo/hello#5"].title == "Edited while listing"
    assert len(gh.requests) == 10  # the pass, then one more from where issue 5 first was


def test_a_backfill_since_a_date_never_moves_sync_past_changes_before_that_date(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_repo("octo/hello", issues=50)
    ctx = make_ctx(gh.base_url, sqlite_url)
    backfill(ctx)  # sync would continue from issue 50's update
    gh.edit_issue("octo/hello", 3, title="Edited before the date")
    since = gh.edit_issue("octo/hello", 4, title="Edited after the date").updated_at
    (source,) = make_sources(ctx, ["octo/hello"])

    ingest.run(
        ctx.sessions,
        source,
        ingest.backfill_cursor_name(source, since),
        since=since,
        advance_sync=True,
    )
    assert stored(ctx)["github:octo/hello#3"].title != "Edited before the date"
    sync(ctx)

    assert stored(ctx)["github:octo/hello#3"].title == "Edited before the date"
