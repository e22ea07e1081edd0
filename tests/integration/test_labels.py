"""Label write-back against the fake GitHub: plan rules, idempotent writes, human corrections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.daemon_proc import cli, write_config
from tests.fakes.github import FakeGitHub
from tests.label_seed import (
    REPO,
    TOKEN,
    analyse,
    human_removes,
    issue_labels,
    label_posts,
    make_ctx,
    set_threshold,
    sync,
)
from triage.context import Context
from triage.db import label_history
from triage.db.schema import Base, LabelCorrection, LabelWrite
from triage.sinks.labels import apply as labels_apply
from triage.sinks.labels import plan as labels_plan


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        yield fake


@pytest.fixture
def run_label(gh: FakeGitHub, sqlite_url: str, tmp_path: Path) -> Callable[..., Any]:
    """`triage label ARGS` as a user runs it, against the fake GitHub and the test database."""
    cfg = write_config(
        tmp_path / "triage.toml",
        {"database": {"url": sqlite_url}, "github": {"api_url": gh.base_url, "repos": [REPO]}},
    )
    env = {"GITHUB_TOKEN": TOKEN, "COLUMNS": "200"}
    return lambda *args: cli("--config", str(cfg), "label", *args, env=env)


def planned(ctx: Context) -> dict[int, list[str]]:
    return {i.number: i.labels for i in labels_plan.plan(ctx).issues}


def writes(ctx: Context) -> dict[tuple[str, str], LabelWrite]:
    with ctx.sessions() as s:
        return {(w.item_key, w.label): w for w in s.scalars(select(LabelWrite))}


def test_plan_keeps_to_the_allowlist_thresholds_and_human_triage(
    gh: FakeGitHub, db_url: str
) -> None:
    for title in ("crash", "idea", "how do I", "already triaged", "edited", "closed", "tagged"):
        gh.add_issue(REPO, title, "body")
    gh.edit_issue(REPO, 4, labels=["bug"])  # a maintainer triaged it by hand
    gh.edit_issue(REPO, 6, state="closed")
    gh.edit_issue(REPO, 7, labels=["needs-triage"])  # not a category: does not block
    ctx = make_ctx(db_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9, labels=["bug", "wontfix"])  # wontfix: not in [labels] map
    analyse(ctx, 2, "feature", 0.5)  # below min_confidence 0.8
    set_threshold(ctx, "question", "gemini", 0.6)
    analyse(ctx, 3, "question", 0.7)  # above its own saved threshold
    analyse(ctx, 4, "feature", 0.95)
    analyse(ctx, 5, "bug", 0.95, stale=True)  # made for text the issue no longer has
    analyse(ctx, 6, "bug", 0.95)
    analyse(ctx, 7, "feature", 0.9)

    plan = labels_plan.plan(ctx)

    assert {i.number: i.labels for i in plan.issues} == {
        1: ["bug"],
        3: ["question"],
        7: ["enhancement"],
    }
    assert plan.held["labelled by a human"] == 1
    assert plan.held["below confidence threshold"] == 1
    assert plan.held["label not in [labels] map"] == 1
    first = plan.issues[0]
    assert first.confidence == 0.9 and first.reason.startswith("bug (gemini)")


def test_rule_based_guesses_are_never_written_whatever_the_threshold(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    gh.add_issue(REPO, "crash again", "it crashes")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    set_threshold(ctx, "bug", "local", 0.4)
    analyse(ctx, 1, "bug", 0.6, provider="local", reason="rules: no model trained for o/r")
    analyse(ctx, 2, "bug", 0.6, provider="local", reason="pooled model: few labels")
    plan = labels_plan.plan(ctx)
    assert {i.number: i.labels for i in plan.issues} == {2: ["bug"]}
    assert plan.held["rule-based guess (no trained model)"] == 1


def test_the_plan_lists_issues_in_number_order(gh: FakeGitHub, sqlite_url: str) -> None:
    for n in range(1, 11):
        gh.add_issue(REPO, f"crash {n}", "it crashes")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    for n in (10, 9, 2):
        analyse(ctx, n, "bug", 0.9)
    assert [i.number for i in labels_plan.plan(ctx).issues] == [2, 9, 10]


def test_apply_writes_each_label_once_and_records_it(gh: FakeGitHub, db_url: str) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    gh.add_issue(REPO, "idea", "please add")
    ctx = make_ctx(db_url, gh)
    sync(ctx)
    a1 = analyse(ctx, 1, "bug", 0.91)
    analyse(ctx, 2, "feature", 0.85)

    result = labels_apply.apply(ctx, labels_plan.plan(ctx))

    assert sorted(result.applied) == [
        (f"github:{REPO}#1", "bug"),
        (f"github:{REPO}#2", "enhancement"),
    ]
    assert issue_labels(gh, 1) == ["bug"] and issue_labels(gh, 2) == ["enhancement"]
    row = writes(ctx)[(f"github:{REPO}#1", "bug")]
    assert (row.status, row.confidence, row.analysis_id) == ("applied", 0.91, a1)
    assert row.written_at is not None
    # Idempotent: before or after the next sync, a second apply writes nothing.
    assert labels_plan.plan(ctx).issues == []
    sync(ctx)
    again = labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert again.applied == [] and label_posts(gh) == 2
    assert labels_plan.plan(ctx).new_corrections == []


def test_never_removes_a_label(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_issue(REPO, "crash", "it crashes", labels=["good first issue"])
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert issue_labels(gh, 1) == ["good first issue", "bug"]
    assert gh.requests_to(r"/labels", method="DELETE") == []
    assert gh.requests_to(r"/labels", method="PUT") == []


def test_a_label_a_human_removed_is_never_added_again(gh: FakeGitHub, db_url: str) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    ctx = make_ctx(db_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    labels_apply.apply(ctx, labels_plan.plan(ctx))
    human_removes(gh, 1, "bug")
    sync(ctx)

    plan = labels_plan.plan(ctx)

    assert plan.new_corrections == [(f"github:{REPO}#1", "bug")]
    assert plan.issues == []
    # Even a newer, more confident analysis does not bring it back.
    analyse(ctx, 1, "bug", 0.99)
    sync(ctx)
    labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert issue_labels(gh, 1) == [] and label_posts(gh, 1) == 1
    with ctx.sessions() as s:
        assert s.scalar(select(LabelCorrection.label)) == "bug"
        examples = label_history.corrections_for(s, REPO)
        assert label_history.corrections_for(s, "other/repo") == []
    assert [(e.key, e.wrong_label, e.category, e.title) for e in examples] == [
        (f"github:{REPO}#1", "bug", "bug", "crash")
    ]


def snapshot(ctx: Context) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to show that a step wrote nothing."""
    with ctx.sessions() as s:
        return {
            t.name: sorted((tuple(r) for r in s.execute(select(t))), key=repr)
            for t in Base.metadata.sorted_tables
        }


def test_a_plan_writes_nothing_to_the_database(
    gh: FakeGitHub, sqlite_url: str, run_label: Callable[..., Any]
) -> None:
    for title in ("crash", "idea"):
        gh.add_issue(REPO, title, "body")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    labels_apply.apply(ctx, labels_plan.plan(ctx))
    human_removes(gh, 1, "bug")  # a correction the plan sees, and apply records
    sync(ctx)
    analyse(ctx, 2, "feature", 0.9)
    before = snapshot(ctx)

    plan = labels_plan.plan(ctx)
    shown = run_label()

    assert plan.new_corrections == [(f"github:{REPO}#1", "bug")]
    assert [i.number for i in plan.issues] == [2]
    assert shown.exit_code == 0, shown.output
    assert "a human removed 'bug'" in shown.output and "1 issues, 1 labels to add" in shown.output
    assert snapshot(ctx) == before
    # Writing is when the correction is recorded, for prompts to show as a counter-example.
    labels_apply.apply(ctx, plan)
    with ctx.sessions() as s:
        assert [e.key for e in label_history.corrections_for(s, REPO)] == [f"github:{REPO}#1"]
    assert labels_plan.plan(ctx).new_corrections == []


def test_a_copy_fetched_before_the_write_is_not_taken_for_a_removal(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    labels_apply.apply(ctx, labels_plan.plan(ctx))
    # A sync that listed the issue before the write commits after it: same updated_at, no label.
    from triage.db.engine import transaction
    from triage.db.schema import Item
    from triage.db.store import utcnow

    with transaction(ctx.sessions) as s:
        item = s.get(Item, f"github:{REPO}#1")
        assert item is not None and item.labels == []
        item.fetched_at = utcnow()
    assert labels_plan.plan(ctx).new_corrections == []


def test_an_issue_a_human_labels_after_the_last_sync_is_left_alone(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    gh.add_issue(REPO, "another crash", "it crashes too")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    analyse(ctx, 2, "bug", 0.9)
    plan = labels_plan.plan(ctx)
    gh.edit_issue(REPO, 1, labels=["question"])  # a maintainer triages it before the write
    gh.edit_issue(REPO, 2, labels=["needs-triage"])  # not a category: does not block

    result = labels_apply.apply(ctx, plan)

    assert issue_labels(gh, 1) == ["question"]
    assert result.applied == [(f"github:{REPO}#2", "bug")]
    [(key, label, why)] = result.skipped
    assert (key, label) == (f"github:{REPO}#1", "bug") and "labelled by a human" in why
    assert writes(ctx)[(key, label)].status == "skipped"


def test_missing_repository_label_is_skipped_with_a_warning(
    gh: FakeGitHub, sqlite_url: str
) -> None:
    gh.add_issue(REPO, "typo in docs", "the page is wrong")
    ctx = make_ctx(sqlite_url, gh, map={"docs": ["docs-needed"]})
    sync(ctx)
    analyse(ctx, 1, "docs", 0.9)

    result = labels_apply.apply(ctx, labels_plan.plan(ctx))

    assert result.applied == [] and result.failed == []
    [(key, label, why)] = result.skipped
    assert "create_missing = true" in why and "docs-needed" in why
    assert writes(ctx)[(key, label)].status == "skipped"
    assert label_posts(gh) == 0 and gh.requests_to(rf"/repos/{REPO}/labels$", "POST") == []
    # Skipped, not forgotten: with create_missing the next run creates the label and writes it.
    ctx.config.labels.create_missing = True
    result = labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert result.created == [f"{REPO}:docs-needed"] and result.applied == [(key, "docs-needed")]
    assert issue_labels(gh, 1) == ["docs-needed"]


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (403, "Resource not accessible by integration", "needs write access to issues"),
        (404, "Not Found", "deleted, transferred, or is not visible to the token"),
        (422, "Validation Failed", "rejected labelling"),
    ],
)
def test_refusals_give_one_line_errors_and_lose_nothing(
    gh: FakeGitHub, sqlite_url: str, status: int, message: str, expected: str
) -> None:
    for title in ("one", "two", "three"):
        gh.add_issue(REPO, title, "body")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    for n in (1, 2, 3):
        analyse(ctx, n, "bug", 0.9)
    gh.fail(rf"/repos/{REPO}/issues/2/labels$", status, message, method="POST")

    result = labels_apply.apply(ctx, labels_plan.plan(ctx))

    assert sorted(k for k, _ in result.applied) == [f"github:{REPO}#1", f"github:{REPO}#3"]
    [(key, label, why)] = result.failed
    assert key == f"github:{REPO}#2" and expected in why and f"{REPO}#2" in why
    assert "\n" not in why and str(status) in why
    assert writes(ctx)[(key, label)].status == "failed"
    # The failed write is planned again and goes through once GitHub accepts it.
    assert {i.number for i in labels_plan.plan(ctx).issues} == {2}
    retry = labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert retry.applied == [(key, "bug")] and issue_labels(gh, 2) == ["bug"]
    assert writes(ctx)[(key, label)].status == "applied"


def test_refused_label_listing_fails_that_repository_only(gh: FakeGitHub, sqlite_url: str) -> None:
    gh.add_issue(REPO, "one", "body")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    gh.fail(rf"/repos/{REPO}/labels$", 403, "Must have admin rights to Repository.", method="GET")
    result = labels_apply.apply(ctx, labels_plan.plan(ctx))
    assert result.applied == [] and len(result.failed) == 1
    assert result.errors == [
        f"GitHub refused listing the labels of {REPO} (403 Must have admin rights to"
        f" Repository.): the token needs write access to issues in {REPO}"
        " (Issues: read and write)"
    ]


def test_label_command_shows_the_plan_and_applies_it(
    gh: FakeGitHub, sqlite_url: str, run_label: Callable[..., Any]
) -> None:
    gh.add_issue(REPO, "App crashes", "segfault")
    gh.add_issue(REPO, "Export to CSV", "please add")
    ctx = make_ctx(sqlite_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9, summary="[bold]Crash[/bold] on start")  # untrusted text
    analyse(ctx, 2, "feature", 0.85)

    plan = run_label()

    assert plan.exit_code == 0, plan.output
    # The literal markup shows: untrusted text is never rendered (the cell may wrap after it).
    assert "[bold]Crash[/bold]" in plan.output
    assert f"{REPO}#2" in plan.output and "enhancement" in plan.output and "0.85" in plan.output
    assert "2 issues, 2 labels to add" in plan.output and "dry run: nothing written" in plan.output
    assert label_posts(gh) == 0
    gh.fail(rf"/repos/{REPO}/issues/2/labels$", 403, "Resource not accessible by integration")

    applied = run_label("--apply")

    assert applied.exit_code == 1
    errors = [line for line in applied.output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: GitHub refused labelling {REPO}#2 (403 Resource not accessible by integration):"
        f" the token needs write access to issues in {REPO} (Issues: read and write)"
    ]
    assert "applied 1 labels, skipped 0, failed 1" in applied.output
    again = run_label("--apply")
    assert again.exit_code == 0 and "applied 1 labels, skipped 0, failed 0" in again.output
    assert issue_labels(gh, 1) == ["bug"] and issue_labels(gh, 2) == ["enhancement"]
