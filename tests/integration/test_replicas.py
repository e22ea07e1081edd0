"""Replicas on one PostgreSQL database share a run: `triage run` processes and real fakes."""

from __future__ import annotations

import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.analysis_support import item, seed
from tests.daemon_proc import Daemon, write_config
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.fakes.gemini_store import texts_of
from tests.fakes.github import FakeGitHub
from triage.db import migrate
from triage.db.engine import make_engine, session_factory
from triage.db.schema import Analysis, Item, WorkUnit

pytestmark = pytest.mark.postgres
MARK = re.compile(r"ZQ\d{3}")  # each seeded title carries its own marker
ENV = {"GEMINI_API_KEY": DEFAULT_KEY, "GITHUB_TOKEN": "ghp_" + "t" * 36}


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


def configure(tmp_path: Path, db_url: str, **sections: dict[str, Any]) -> Path:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    return write_config(
        tmp_path / "triage.toml",
        {"database": {"url": db_url}, "logging": {"level": "DEBUG"}, **sections},
    )


def analyze_config(
    tmp_path: Path, db_url: str, fake: FakeGemini, lease: float, unit_items: int = 2
) -> Path:
    """Two items per call, one call at a time, a unit per call: many units to share."""
    gemini = {"base_url": fake.base_url, "max_retries": 0, "retry_initial_delay": 0}
    llm = {"provider": "gemini", "max_items_per_call": 2, "concurrency": 1, "gemini": gemini}
    return configure(
        tmp_path, db_url, llm=llm, daemon={"lease_seconds": lease, "unit_items": unit_items}
    )


def seed_items(db_url: str, n: int) -> list[str]:
    engine = make_engine(db_url)
    seed(engine, [item(i, f"App crashes ZQ{i:03d} on start", "Traceback") for i in range(n)])
    engine.dispose()
    return [f"ZQ{i:03d}" for i in range(n)]


def received(fake: FakeGemini) -> Counter[str]:
    """How often each item reached the fake Gemini (from the prompts it was sent)."""
    seen: Counter[str] = Counter()
    for req in fake.requests_to(r":generateContent$", "POST"):
        body = req.json()
        user = "\n".join(texts_of(c) for c in body.get("contents") or [])
        seen.update(MARK.findall(user))
    return seen


def analyses(db_url: str) -> Counter[str]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        titles = s.execute(select(Item.title).join(Analysis, Analysis.item_key == Item.key))
        seen = Counter(m for (title,) in titles for m in MARK.findall(title))
    engine.dispose()
    return seen


def units(db_url: str) -> list[WorkUnit]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = list(s.scalars(select(WorkUnit).order_by(WorkUnit.id)))
    engine.dispose()
    return rows


def replica(cfg: Path, name: str, job: str, tmp_path: Path) -> Daemon:
    args = ("--once", "--only", job, "--replica", name)
    return Daemon(cfg, *args, cwd=tmp_path, env=ENV)


def finished(d: Daemon, job: str) -> dict[str, Any]:
    counts: dict[str, Any] = d.event("job finished", job=job)["counts"]
    return counts


def test_two_replicas_share_an_analyze_backlog_and_analyse_each_item_once(
    tmp_path: Path, postgres_url: str, gemini: FakeGemini
) -> None:
    cfg = analyze_config(tmp_path, postgres_url, gemini, lease=30)
    marks = seed_items(postgres_url, 24)
    gemini.slow(r":generateContent$", 0.5)  # twelve units: six seconds for one replica alone
    with replica(cfg, "a", "analyze", tmp_path) as a:
        a.event("job started", job="analyze")
        with replica(cfg, "b", "analyze", tmp_path) as b:
            b.event("helping the run of another replica", job="analyze")
            assert a.wait() == 0 and b.wait() == 0
    lead, helper = finished(a, "analyze"), finished(b, "analyze")
    assert lead["units"] == 12 and lead["analysed"] == 24  # the run adds up every replica's work
    assert lead["units_here"] >= 1 and helper["units_here"] >= 1
    assert lead["units_here"] + helper["units_here"] == 12
    assert received(gemini) == Counter({m: 1 for m in marks})  # nothing sent twice
    assert analyses(postgres_url) == Counter({m: 1 for m in marks})
    rows = units(postgres_url)
    assert {(u.state, u.attempt) for u in rows} == {("done", 1)}
    assert {u.replica for u in rows} == {"a", "b"}


def test_a_killed_replicas_unit_is_taken_over_once_its_lease_expires(
    tmp_path: Path, postgres_url: str, gemini: FakeGemini
) -> None:
    cfg = analyze_config(tmp_path, postgres_url, gemini, lease=2)
    marks = seed_items(postgres_url, 12)
    gemini.slow(r":generateContent$", 0.3)
    held = gemini.hold(r":generateContent$", after=0)  # replica a's first call never returns
    with replica(cfg, "a", "analyze", tmp_path) as a:
        assert held.reached.wait(30)
        with replica(cfg, "b", "analyze", tmp_path) as b:
            b.event("helping the run of another replica", job="analyze")
            a.signal(signal.SIGKILL)  # mid-unit: no release, no finish, its lease just runs out
            assert a.wait() == -signal.SIGKILL
            held.release()
            assert b.wait(60) == 0
    rows = units(postgres_url)
    [taken] = [u for u in rows if u.attempt == 2]
    assert (taken.state, taken.replica) == ("done", "b")
    assert {(u.state, u.replica, u.attempt) for u in rows if u is not taken} == {("done", "b", 1)}
    assert analyses(postgres_url) == Counter({m: 1 for m in marks})  # stored once each
    sent = received(gemini)  # only the killed unit's items went out twice
    assert {m for m, n in sent.items() if n == 2} == set(
        MARK.findall(" ".join(taken_titles(taken)))
    )
    assert set(sent) == set(marks) and max(sent.values()) == 2


def test_sigterm_lets_a_helper_give_its_unit_back_and_the_run_still_ends_complete(
    tmp_path: Path, postgres_url: str, gemini: FakeGemini
) -> None:
    cfg = analyze_config(tmp_path, postgres_url, gemini, lease=30, unit_items=4)  # two calls
    marks = seed_items(postgres_url, 16)
    gemini.slow(r":generateContent$", 0.5)
    with replica(cfg, "a", "analyze", tmp_path) as a:
        a.event("job started", job="analyze")
        with replica(cfg, "b", "analyze", tmp_path) as b:
            b.event("unit claimed", job="analyze")
            b.signal(signal.SIGTERM)  # during the unit's first call: the second is not sent
            assert b.wait() == 0
            b.event("unit given back on shutdown", job="analyze")
            assert a.wait(60) == 0
    helper, lead = finished(b, "analyze"), finished(a, "analyze")
    assert helper["stopped_early"] == 1 and helper["analysed"] == 2 and helper["units_here"] == 0
    assert lead["units"] == 4 and lead["analysed"] == 14  # a did the rest, the given-back half too
    assert analyses(postgres_url) == Counter({m: 1 for m in marks})
    assert received(gemini) == Counter({m: 1 for m in marks})
    rows = units(postgres_url)
    assert {(u.state, u.replica) for u in rows} == {("done", "a")}
    assert sorted(u.attempt for u in rows) == [1, 1, 1, 2]  # the given-back one, claimed again


def taken_titles(unit: WorkUnit) -> list[str]:
    """The item keys of a unit, turned back into the markers the seeded titles carry."""
    return [f"ZQ{int(key.rsplit('#', 1)[1]):03d}" for key in unit.items]


def test_two_replicas_fetch_each_repository_once(tmp_path: Path, postgres_url: str) -> None:
    repos = [f"acme/r{n}" for n in range(8)]
    with FakeGitHub() as gh:
        for name in repos:
            gh.add_repo(name, issues=3)
        gh.slow(r"/issues$", 0.5)  # eight sources: about four seconds for one replica alone
        github = {"api_url": gh.base_url, "repos": repos, "since": "5000d"}
        cfg = configure(tmp_path, postgres_url, github=github, daemon={"lease_seconds": 30})
        with replica(cfg, "a", "sync", tmp_path) as a:
            a.event("job started", job="sync")
            with replica(cfg, "b", "sync", tmp_path) as b:
                b.event("helping the run of another replica", job="sync")
                assert a.wait() == 0 and b.wait() == 0
        per_repo = Counter(
            req.path.split("/")[3] for req in gh.requests_to(r"/repos/acme/[^/]+/issues$")
        )
    lead, helper = finished(a, "sync"), finished(b, "sync")
    assert lead["sources"] == 8 and lead["items"] == 24
    assert lead["units_here"] >= 1 and helper["units_here"] >= 1
    # One pass per repository: its listing page, asked for by one replica only.
    assert per_repo == Counter({name.split("/")[1]: 1 for name in repos})
    engine = make_engine(postgres_url)
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Item.key)).all()) == 24
    engine.dispose()
