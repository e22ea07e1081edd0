"""Offline themes on a real (SQLite) database: grouping across sources and stable ids."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.corpus import PROBLEMS, Problem, batch
from triage.analysis.themes import local as themes_local
from triage.analysis.themes import run as th
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.schema import Theme, ThemeItem
from triage.sources.base import ItemIn

EPOCH = datetime(2000, 1, 1)
DAY1 = datetime(2025, 3, 3)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated database: SQLite, and PostgreSQL when TRIAGE_TEST_POSTGRES_URL is set."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def add(sessions: sessionmaker[Session], items: Sequence[ItemIn]) -> None:
    with transaction(sessions) as s:
        store.upsert_items(s, items)


def run(sessions: sessionmaker[Session], min_size: int = 2) -> th.ThemeRun:
    offline = themes_local.OfflineThemer(sessions, min_size)
    return th.run_themes(sessions, EPOCH, offline, "local", themes_local.MEMBERS_PER_THEME)


def assignments(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as s:
        return dict(s.execute(select(ThemeItem.item_key, ThemeItem.theme_id)).all())


def problem_of(items: Sequence[ItemIn], problems: Sequence[Problem], per: int) -> dict[str, str]:
    return {item.key: problems[i // per].name for i, item in enumerate(items)}


def main_theme(assigned: dict[str, int], truth: dict[str, str], problem: str) -> int:
    ids = Counter(assigned[k] for k, p in truth.items() if p == problem and k in assigned)
    return ids.most_common(1)[0][0]


def test_github_and_stack_overflow_reports_of_one_problem_share_a_theme(
    sessions: sessionmaker[Session],
) -> None:
    items = batch(PROBLEMS, 8, DAY1, seed=3)
    add(sessions, items)
    result = run(sessions)
    truth = problem_of(items, PROBLEMS, 8)
    assigned = assignments(sessions)
    assert result.assigned == len(assigned) >= 0.85 * len(items)
    members: dict[int, Counter[str]] = defaultdict(Counter)
    for key, tid in assigned.items():
        members[tid][truth[key]] += 1
    # Wording is heuristic evidence: allow two strays in 64, no more.
    strays = sum(sum(c.values()) - max(c.values()) for c in members.values())
    assert strays <= 2, f"themes mix problems: {dict(members)}"
    sources = {i.key: i.source for i in items}
    for p in PROBLEMS:
        tid = main_theme(assigned, truth, p.name)
        keys = [k for k, t in assigned.items() if t == tid]
        assert len(keys) >= 6, p.name
        assert {sources[k] for k in keys} == {"github", "stackexchange"}, p.name
    with sessions() as s:
        names = {t.id: t for t in s.scalars(select(Theme))}
    quota = names[main_theme(assigned, truth, "quota")]
    assert any(w in quota.title.lower() for w in ("quota", "rate limit", "429", "requests"))
    assert quota.terms and quota.provider == "local" and "e.g." in quota.description


def test_theme_ids_survive_three_runs_with_new_items(sessions: sessionmaker[Session]) -> None:
    problems = PROBLEMS[:5]
    first = batch(problems, 6, DAY1, seed=1)
    add(sessions, first)
    run(sessions)
    truth = problem_of(first, problems, 6)
    before = assignments(sessions)
    ids = {p.name: main_theme(before, truth, p.name) for p in problems}
    with sessions() as s:
        theme_count = len(s.scalars(select(Theme)).all())

    for day in (1, 2):
        new = batch(problems, 3, DAY1 + timedelta(days=day), seed=10 + day, first_number=day * 1000)
        add(sessions, new)
        result = run(sessions)
        assert result.pending == len(new) + (len(truth) - len(before))
        assert result.new_themes == 0, "reports of known problems started a new theme"
        now = assignments(sessions)
        for key, tid in before.items():
            assert now[key] == tid, "an unchanged item changed theme"
        new_truth = problem_of(new, problems, 3)
        joined = [k for k in new_truth if k in now]
        assert len(joined) >= 0.8 * len(new)
        for key in joined:
            assert now[key] == ids[new_truth[key]], f"{key} did not join its problem's theme"
        truth.update(new_truth)
        before = now
    with sessions() as s:
        assert len(s.scalars(select(Theme)).all()) == theme_count


def test_an_item_changes_theme_only_when_its_content_changes(
    sessions: sessionmaker[Session],
) -> None:
    problems = PROBLEMS[:3]
    items = batch(problems, 6, DAY1, seed=5)
    add(sessions, items)
    run(sessions)
    truth = problem_of(items, problems, 6)
    before = assignments(sessions)
    with sessions() as s:
        assigned_at = dict(s.execute(select(ThemeItem.item_key, ThemeItem.assigned_at)).all())

    again = run(sessions)
    assert again.assigned == 0 and again.new_themes == 0
    assert assignments(sessions) == before

    # A comment bumps updated_at but not the text: still nothing to do.
    moved = next(i for i in items if i.key in before and truth[i.key] == problems[0].name)
    bumped = moved.model_copy(update={"updated_at": moved.updated_at + timedelta(hours=1)})
    add(sessions, [bumped])
    run(sessions)
    with sessions() as s:
        row = s.get(ThemeItem, moved.key)
        assert row is not None and row.assigned_at == assigned_at[moved.key]

    # The reporter rewrites the issue to be about another problem: it follows its content.
    donor = next(i for i in items if truth[i.key] == problems[2].name)
    rewritten = bumped.model_copy(
        update={
            "title": donor.title,
            "body": donor.body,
            "updated_at": bumped.updated_at + timedelta(hours=1),
        }
    )
    add(sessions, [rewritten])
    result = run(sessions)
    assert result.pending == 1 + (len(items) - len(before))
    after = assignments(sessions)
    assert after[moved.key] == main_theme(before, truth, problems[2].name)
    assert {k: v for k, v in after.items() if k != moved.key} == {
        k: v for k, v in before.items() if k != moved.key
    }


def test_a_quiet_theme_takes_its_problem_back_weeks_later(sessions: sessionmaker[Session]) -> None:
    problems = PROBLEMS[:4]
    first = batch(problems, 5, DAY1, seed=7)
    add(sessions, first)
    run(sessions)
    truth = problem_of(first, problems, 5)
    old_id = main_theme(assignments(sessions), truth, "safety")
    # Three weeks of other problems only.
    for week in (1, 2, 3):
        others = batch(
            PROBLEMS[4:], 3, DAY1 + timedelta(weeks=week), seed=week, first_number=week * 100
        )
        add(sessions, others)
        run(sessions)
    back = batch([PROBLEMS[2]], 4, DAY1 + timedelta(weeks=4), seed=99, first_number=9000)
    add(sessions, back)
    result = run(sessions)
    now = assignments(sessions)
    assert sum(now.get(i.key) == old_id for i in back) >= 3
    assert result.new_themes == 0


def test_converging_themes_are_merged_younger_into_older(sessions: sessionmaker[Session]) -> None:
    # Two themes about one problem (as an earlier, smaller run could leave them) ...
    items = batch([PROBLEMS[1]], 6, DAY1, seed=4)
    add(sessions, items)
    t0 = DAY1 + timedelta(days=1)
    with transaction(sessions) as s:
        older = Theme(title="quota exceeded", created_at=t0, updated_at=t0, provider="local")
        younger = Theme(title="rate limit", created_at=t0, updated_at=t0, provider="local")
        s.add_all([older, younger])
        s.flush()
        for n, item in enumerate(items):
            s.add(
                ThemeItem(
                    item_key=item.key,
                    theme_id=older.id if n < 3 else younger.id,
                    content_hash=item.content_hash,
                    assigned_at=t0,
                )
            )
    # ... and more reports of it arrive: the two themes are one.
    add(sessions, batch([PROBLEMS[1]], 4, DAY1 + timedelta(days=2), seed=8, first_number=500))
    result = run(sessions)
    assert result.merged == 1
    with sessions() as s:
        young = s.get(Theme, younger.id)
        assert young is not None and young.merged_into == older.id and young.merged_at is not None
        ids = set(s.scalars(select(ThemeItem.theme_id)))
        assert ids == {older.id}
        counts = th.theme_counts(s, DAY1, DAY1 + timedelta(days=3))
        assert set(counts) == {older.id}
        assert sum(counts[older.id].values()) == 10
        assert th.live_theme_id(s, younger.id) == older.id


def test_items_that_fit_no_theme_wait_without_redoing_work(sessions: sessionmaker[Session]) -> None:
    items = batch(PROBLEMS[:3], 4, DAY1, seed=2)
    lonely = batch([PROBLEMS[5]], 1, DAY1, seed=2, first_number=700)
    add(sessions, items + lonely)
    first = run(sessions)
    assert lonely[0].key not in assignments(sessions) and first.left_over >= 1
    second = run(sessions)
    assert second.skipped and second.assigned == 0
    # A second report of the lonely problem arrives: together they make a theme.
    add(sessions, batch([PROBLEMS[5]], 2, DAY1, seed=3, first_number=800))
    third = run(sessions)
    assert not third.skipped and third.new_themes == 1
    assert lonely[0].key in assignments(sessions)


def test_theme_counts_by_source_and_period(sessions: sessionmaker[Session]) -> None:
    week1 = batch(PROBLEMS[:2], 4, DAY1, seed=1)
    week2 = batch(PROBLEMS[:2], 6, DAY1 + timedelta(days=7), seed=2, first_number=100)
    add(sessions, week1 + week2)
    run(sessions)
    assigned = assignments(sessions)
    with sessions() as s:
        c1 = th.theme_counts(s, DAY1, DAY1 + timedelta(days=7))
        c2 = th.theme_counts(s, DAY1 + timedelta(days=7), DAY1 + timedelta(days=14))
    sources = {i.key: i.source for i in week1 + week2}
    for counts, items in ((c1, week1), (c2, week2)):
        expected: dict[int, Counter[str]] = defaultdict(Counter)
        for i in items:
            if i.key in assigned:
                expected[assigned[i.key]][sources[i.key]] += 1
        assert counts == {tid: dict(c) for tid, c in expected.items()}
    assert sum(sum(v.values()) for v in c2.values()) > sum(sum(v.values()) for v in c1.values())
