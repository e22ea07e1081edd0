"""The Digest model built from a database of a few hundred items from both sources."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import sessionmaker

from tests.digest_seed import Seed, hours
from triage.config import Config
from triage.db import migrate
from triage.db.engine import make_engine
from triage.digest import NEEDS_REVIEW, NOT_ANALYSED, Digest, build_digest
from triage.windows import Window

END = datetime(2025, 5, 12, 9)
WINDOW = Window.ending("1d", END)


def spread(seed: Seed, n: int, source: str, start: datetime, span: timedelta) -> list[str]:
    """n items evenly inside [start, start + span)."""
    return [seed.item(start + span * i / n, source=source) for i in range(n)]


@pytest.fixture
def seeded(engine: Engine) -> Seed:
    return seed_all(engine)


def seed_all(engine: Engine) -> Seed:
    s = Seed(engine)
    day = timedelta(days=1)
    cur_gh = spread(s, 120, "github", WINDOW.start, day)
    cur_se = spread(s, 80, "stackexchange", WINDOW.start, day)
    prev_gh = spread(s, 100, "github", WINDOW.start - day, day)
    prev_se = spread(s, 110, "stackexchange", WINDOW.start - day, day)
    spread(s, 50, "github", WINDOW.start - 5 * day, day)  # older: counted nowhere
    s.item(END, source="github")  # the end is exclusive: belongs to the next window
    # Categories: 100 current bugs, 60 questions, 30 with only a stale analysis, 10 needs review.
    for k in cur_gh[:100]:
        s.analysis(k, "question", at=datetime(2025, 5, 11, 10), model="m0")  # superseded
        s.analysis(k, "bug", "high" if k.endswith(("0", "5")) else "low", at=datetime(2025, 5, 12))
    for k in cur_gh[100:] + cur_se[:40]:
        s.analysis(k, "question")
    for k in cur_se[40:70]:
        s.analysis(k, "bug", "critical", content_hash="text-before-an-edit")
    for k in cur_se[70:]:
        s.analysis(k, None)
    for k in prev_gh[:50]:
        s.analysis(k, "bug", "low")
    # Themes: "login" absorbed two merged themes (a chain); it grows. "docs" shrinks.
    login = s.theme("Login fails after upgrade")
    old = s.theme("Sign-in error", merged_into=login)
    older = s.theme("Auth broken", merged_into=old)
    docs = s.theme("Docs out of date")
    for i, k in enumerate(cur_gh[:30] + cur_se[:15]):
        s.assign(k, (login, old, older)[i % 3])
    for k in prev_gh[:20]:
        s.assign(k, login)
    for k in cur_se[15:20]:
        s.assign(k, docs)
    for k in prev_se[:25]:
        s.assign(k, docs)
    # Duplicates: two found in the window, one earlier.
    s.duplicate(cur_gh[0], cur_se[0], END - hours(2), 0.95, "same login stack trace")
    s.duplicate(cur_gh[1], cur_gh[2], END - hours(3), 0.81, "both report 2FA loop")
    s.duplicate(prev_gh[0], prev_gh[1], WINDOW.start - hours(1), 0.9, "old pair")
    # Unanswered: only open questions with no answer asked more than 48h before the end.
    s.item(END - hours(50), "stackexchange", title="Still waiting")
    s.item(END - hours(47), "stackexchange", title="Too recent")
    s.item(END - hours(60), "stackexchange", title="Answered", answer_count=1, is_answered=True)
    s.item(END - hours(60), "stackexchange", title="Closed", state="closed")
    s.item(END - hours(60), "github", title="Not a question")
    # Spend: two calls in the window, one before.
    s.llm_call(END - hours(1), 1000, 100, 0.25)
    s.llm_call(END - hours(20), 3000, 300, 0.5)
    s.llm_call(WINDOW.start - hours(1), 9999, 999, 9.0)
    s.flush()
    return s


def digest(engine: Engine, cfg: Config | None = None) -> Digest:
    with sessionmaker(engine)() as session:
        return build_digest(session, cfg or Config(), WINDOW)


def test_counts_by_source_and_category_versus_previous_window(engine: Engine, seeded: Seed) -> None:
    d = digest(engine)
    assert (d.start, d.end, d.previous_start) == (WINDOW.start, END, WINDOW.start - timedelta(1))
    # "Too recent" (asked 47h before the end) falls in the previous window
    assert (d.total.current, d.total.previous) == (200, 211)
    by_source = {r.name: (r.current, r.previous, r.delta) for r in d.by_source}
    assert by_source == {"github": (120, 100, 20), "stackexchange": (80, 111, -31)}
    by_category = {r.name: (r.current, r.previous) for r in d.by_category}
    assert by_category == {
        "bug": (100, 50),
        "question": (60, 0),
        NOT_ANALYSED: (30, 161),
        NEEDS_REVIEW: (10, 0),
    }


def test_top_themes_count_merged_themes_under_the_survivor(engine: Engine, seeded: Seed) -> None:
    d = digest(engine)
    assert [t.title for t in d.themes] == ["Login fails after upgrade", "Docs out of date"]
    login, docs = d.themes
    assert (login.id, login.current, login.previous, login.trend) == (1, 45, 20, "growing")
    assert login.by_source == {"github": 30, "stackexchange": 15}
    assert (docs.current, docs.previous, docs.trend) == (5, 25, "shrinking")
    assert d.active_themes == 2
    assert len(login.examples) == 3 and len(docs.examples) == 3
    assert all(WINDOW.start <= e.created_at < END for t in d.themes for e in t.examples)


def test_new_means_never_seen_before_not_quiet_last_window(engine: Engine) -> None:
    s = Seed(engine)
    day = timedelta(days=1)
    fresh, back, steady = s.theme("First seen today"), s.theme("Back"), s.theme("Steady")
    for when, theme in [
        (END - hours(2), fresh),
        (END - hours(3), fresh),
        (END - 40 * day, back),  # reported weeks ago, quiet since, reported again today
        (END - hours(4), back),
        (END - hours(5), steady),
        (WINDOW.start - hours(5), steady),
    ]:
        s.assign(s.item(when), theme)
    s.flush()
    trends = {t.title: (t.previous, t.trend) for t in digest(engine).themes}
    assert trends == {
        "First seen today": (0, "new"),
        "Back": (0, "growing"),
        "Steady": (1, "steady"),
    }


def test_examples_and_top_themes_follow_config(engine: Engine, seeded: Seed) -> None:
    cfg = Config.model_validate({"digest": {"top_themes": 1, "examples_per_theme": 2}})
    d = digest(engine, cfg)
    assert [t.title for t in d.themes] == ["Login fails after upgrade"]
    assert len(d.themes[0].examples) == 2
    assert d.active_themes == 2


def test_volume_series_covers_recent_windows(engine: Engine, seeded: Seed) -> None:
    d = digest(engine)
    assert len(d.volume.window_ends) == 8 and d.volume.window_ends[-1] == END
    login = d.volume.themes[0]
    assert login.counts[-1] == 45 and login.counts[-2] == 20 and sum(login.counts[:-2]) == 0


def test_high_priority_bugs_use_the_latest_analysis_of_current_text(
    engine: Engine, seeded: Seed
) -> None:
    d = digest(engine)
    # 20 of the 100 current bugs are "high"; the 30 "critical" analyses are for older text.
    assert d.high_priority.total == 20 == len(d.high_priority.items)
    assert {r.priority for r in d.high_priority.items} == {"high"}
    assert all(r.category == "bug" for r in d.high_priority.items)


def test_duplicates_in_window_with_reasons(engine: Engine, seeded: Seed) -> None:
    d = digest(engine)
    assert d.duplicates_total == 2
    assert [x.reason for x in d.duplicates] == ["same login stack trace", "both report 2FA loop"]
    first = d.duplicates[0]
    assert {first.a.source, first.b.source} == {"github", "stackexchange"}


def test_unanswered_questions_past_the_threshold(engine: Engine, seeded: Seed) -> None:
    d = digest(engine)
    titles = [r.title for r in d.unanswered.items]
    assert "Still waiting" in titles
    assert not {"Too recent", "Answered", "Closed", "Not a question"} & set(titles)
    # the first question of the previous window was asked exactly 48h before the end
    assert d.unanswered.total == 1 == len(titles)
    cfg = Config.model_validate({"digest": {"unanswered_after_hours": 100}})
    assert digest(engine, cfg).unanswered.total == 0


def test_spend_sums_the_window_only(engine: Engine, seeded: Seed) -> None:
    s = digest(engine).spend
    assert (s.calls, s.input_tokens, s.output_tokens, s.cost_usd) == (2, 4000, 400, 0.75)
    assert s.cached_tokens == 250 + 750


def test_empty_database_gives_an_empty_digest(engine: Engine) -> None:
    d = digest(engine)
    assert d.total.current == 0 and d.themes == [] and d.duplicates == []
    assert d.unanswered.total == 0 and d.spend.calls == 0


def test_digest_never_scans_the_whole_items_table(engine: Engine, seeded: Seed) -> None:
    """Every query over items goes through an index (what keeps 200k items under 2 s)."""
    plans: list[str] = []

    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "items" in statement:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            plans.append(" | ".join(str(r[-1]) for r in rows))

    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    event.listen(engine, "before_cursor_execute", capture)
    try:
        digest(engine)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert plans
    full_scans = [
        p for p in plans if "SCAN items" in p and "USING" not in p.split("SCAN items")[1][:40]
    ]
    assert not full_scans, full_scans


def test_same_digest_on_every_database(db_url: str) -> None:
    """The SQL is portable: SQLite and PostgreSQL give the same digest."""
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        seed_all(engine)
        d = digest(engine)
    finally:
        engine.dispose()
    assert {r.name: (r.current, r.previous) for r in d.by_source} == {
        "github": (120, 100),
        "stackexchange": (80, 111),
    }
    assert {r.name: r.current for r in d.by_category}["bug"] == 100
    assert [(t.title, t.current, t.previous) for t in d.themes] == [
        ("Login fails after upgrade", 45, 20),
        ("Docs out of date", 5, 25),
    ]
    assert (d.high_priority.total, d.duplicates_total, d.unanswered.total) == (20, 2, 1)
    assert d.spend.cost_usd == 0.75
