"""Work units: planned once, each claimed by one replica, taken over when a lease runs out."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from tests.analysis_support import MIXED, context, gemini_config, item, seed
from tests.daemon_proc import cli, write_config
from tests.fakes.gemini import FakeGemini
from triage.analysis import classify
from triage.db import claims, migrate
from triage.db.claims import Planned, StaleClaim
from triage.db.engine import make_engine, session_factory
from triage.db.schema import Analysis, LLMCall, WorkUnit


@pytest.fixture
def db(db_url: str) -> Engine:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def plan_three(db: Engine, run: str = "1") -> int:
    units = [Planned(f"batch-{n}", [f"k{n}a", f"k{n}b"]) for n in range(3)]
    return claims.plan(session_factory(db), "analyze", run, units)


def test_a_run_is_planned_once(db: Engine) -> None:
    assert plan_three(db) == 3
    assert plan_three(db) == 0  # the same run planned again (e.g. a retried start) adds nothing
    with session_factory(db)() as s:
        assert claims.unfinished(s, "analyze") == 3
        assert claims.held_items(s, "analyze") == {"k0a", "k0b", "k1a", "k1b", "k2a", "k2b"}


def test_replicas_claiming_at_once_each_get_a_different_unit(db: Engine) -> None:
    sessions = session_factory(db)
    claims.plan(sessions, "sync", "7", [Planned(f"github:o/r{n}", []) for n in range(12)])
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda i: claims.claim(sessions, "sync", f"r{i}", 60), range(16)))
    units = [c.unit for c in got if c is not None]
    assert len(units) == 12 and len(set(units)) == 12
    assert got.count(None) == 4
    assert all(c.attempt == 1 for c in got if c is not None)


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_refused(db: Engine) -> None:
    sessions = session_factory(db)
    plan_three(db)
    old = claims.claim(sessions, "analyze", "a", lease=0)  # as if its replica had died
    assert old is not None and old.unit == "batch-0"
    new = claims.claim(sessions, "analyze", "b", lease=60)
    assert new is not None and (new.unit, new.attempt, new.replica) == ("batch-0", 2, "b")
    assert claims.renew(sessions, old, 60) is False
    with pytest.raises(StaleClaim), sessions() as s:
        claims.hold(s, old, 60)
    assert claims.finish(sessions, old, {"analysed": 2}) is False
    assert claims.release(sessions, old) is False
    assert claims.finish(sessions, new, {"analysed": 2}) is True
    with sessions() as s:
        [row] = [u for u in claims.results(s, "analyze", "1") if u.unit == "batch-0"]
    assert (row.state, row.replica, row.attempt, row.result) == ("done", "b", 2, {"analysed": 2})


def test_a_live_lease_is_not_taken_and_a_released_unit_is_free_at_once(db: Engine) -> None:
    sessions = session_factory(db)
    claims.plan(sessions, "sync", "1", [Planned("github:o/r", [])])
    held = claims.claim(sessions, "sync", "a", lease=60)
    assert held is not None
    assert claims.claim(sessions, "sync", "b", lease=60) is None
    assert claims.release(sessions, held) is True
    again = claims.claim(sessions, "sync", "b", lease=60)
    assert again is not None and again.attempt == 2


def test_units_finished_two_days_ago_are_pruned(db: Engine) -> None:
    sessions = session_factory(db)
    plan_three(db)
    for _ in range(3):
        c = claims.claim(sessions, "analyze", "a", 60)
        assert c is not None and claims.finish(sessions, c, {})
    with sessions() as s, s.begin():
        at = claims.now(s)
        s.execute(
            update(WorkUnit)
            .where(WorkUnit.unit == "batch-0")
            .values(finished_at=at - timedelta(days=3))
        )
    assert claims.prune(sessions) == 1
    with sessions() as s:
        assert sorted(s.scalars(select(WorkUnit.unit))) == ["batch-1", "batch-2"]


def test_answers_of_a_stale_attempt_are_not_stored(fake_gemini: FakeGemini, db: Engine) -> None:
    ctx = context(gemini_config(fake_gemini, str(db.url)), db)
    seed(db, [item(n, title, body) for n, (title, body) in enumerate(MIXED, 1)])
    keys = [f"github:acme/app#{n}" for n in range(1, len(MIXED) + 1)]
    sessions = session_factory(db)
    claims.plan(sessions, "analyze", "1", [Planned("batch-0", keys)])
    old = claims.claim(sessions, "analyze", "a", lease=0)
    assert old is not None
    new = claims.claim(sessions, "analyze", "b", lease=60)  # the takeover
    assert new is not None

    def guard(s: object) -> None:
        claims.hold(s, old, 60)  # type: ignore[arg-type]

    with pytest.raises(StaleClaim):
        classify.run(ctx, ctx.provider(), keys=old.items, guard=guard)
    assert fake_gemini.generate_calls == 1  # the call was made; its answers are refused
    with sessions() as s:
        assert s.scalars(select(Analysis)).all() == []
        assert s.scalars(select(LLMCall)).all() == []
    stats = classify.run(
        ctx, ctx.provider(), keys=new.items, guard=lambda s: claims.hold(s, new, 60)
    )
    assert stats.analysed == len(MIXED)
    with sessions() as s:
        assert len(s.scalars(select(Analysis)).all()) == len(MIXED)


def test_status_shows_the_units_replicas_hold(tmp_path: Path, db: Engine) -> None:
    sessions = session_factory(db)
    plan_three(db)
    held = claims.claim(sessions, "analyze", "replica-b", 60)
    assert held is not None
    cfg = write_config(tmp_path / "triage.toml", {"database": {"url": str(db.url)}})
    data = json.loads(cli("--config", str(cfg), "status", "--json").output)
    [unit] = data["units_in_flight"]
    assert (unit["job"], unit["unit"], unit["items"], unit["replica"]) == (
        "analyze",
        "batch-0",
        2,
        "replica-b",
    )
    table = cli("--config", str(cfg), "status").output
    assert "in flight: analyze batch-0 on replica-b (attempt 1" in table
    assert claims.finish(sessions, held, {})
    assert json.loads(cli("--config", str(cfg), "status", "--json").output)["units_in_flight"] == []
