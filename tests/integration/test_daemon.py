"""`triage run` as a real process: signals, one daemon per SQLite file, replicas on PostgreSQL."""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.daemon_proc import Daemon, write_config
from triage.db import migrate
from triage.db.engine import make_engine
from triage.db.schema import JobRun, JobSlot

TICK = ("--test-tick-every", "1")


def setup(tmp_path: Path, db_url: str, **sections: dict[str, object]) -> Path:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    return write_config(tmp_path / "triage.toml", {"database": {"url": db_url}, **sections})


def job_runs(db_url: str, job: str = "tick") -> list[JobRun]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(JobRun).where(JobRun.job == job).order_by(JobRun.id))
            return [JobRun(**row._mapping) for row in rows]
    finally:
        engine.dispose()


def slots(db_url: str, job: str = "tick") -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(JobSlot.slot).where(JobSlot.job == job)))
    finally:
        engine.dispose()


def test_a_second_daemon_on_one_sqlite_file_refuses_to_start(
    tmp_path: Path, sqlite_url: str
) -> None:
    cfg = setup(tmp_path, sqlite_url)
    with Daemon(cfg, *TICK, cwd=tmp_path) as first:
        first.event("daemon started")
        # The real jobs: the refusal comes before any start-up advice is logged.
        with Daemon(cfg, cwd=tmp_path) as second:
            assert second.wait(60) == 1
            message = second.lines
        assert len(message) == 1 and message[0].startswith("error:"), message
        assert f"already running on {tmp_path / 'triage.db'}" in message[0]
        assert f"pid {first.proc.pid}" in message[0] and "use PostgreSQL" in message[0]
        assert first.proc.poll() is None  # the first one is untouched
        assert first.stop() == 0


def test_sigterm_lets_the_running_job_finish_and_exits_0(tmp_path: Path, sqlite_url: str) -> None:
    cfg = setup(tmp_path, sqlite_url)
    with Daemon(cfg, *TICK, "--test-tick-seconds", "2", cwd=tmp_path) as d:
        started = d.event("job started", job="tick")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
    [run] = [r for r in job_runs(sqlite_url) if r.slot == started["slot"]]
    assert run.outcome == "ok" and run.finished_at is not None
    assert run.counts == {"ticks": 1, "steps": run.counts["steps"]}
    assert all(r.outcome != "running" for r in job_runs(sqlite_url))
    assert d.event("stopped")


def test_a_job_outlasting_the_stop_timeout_is_checkpointed_and_exits_0(
    tmp_path: Path, sqlite_url: str
) -> None:
    cfg = setup(tmp_path, sqlite_url)
    args = (*TICK, "--test-tick-seconds", "120", "--stop-timeout", "0.5")
    with Daemon(cfg, *args, cwd=tmp_path) as d:
        started = d.event("job started", job="tick")
        d.signal(signal.SIGINT)
        assert d.wait() == 0
    [run] = [r for r in job_runs(sqlite_url) if r.slot == started["slot"]]
    assert run.outcome == "interrupted" and run.finished_at is not None
    assert "work committed so far is kept" in (run.error or "")


def test_health_and_metrics(tmp_path: Path, sqlite_url: str) -> None:
    cfg = setup(tmp_path, sqlite_url)
    with Daemon(cfg, *TICK, "--test-tick-seconds", "0.1", "--health-port", "0", cwd=tmp_path) as d:
        url = d.event("health endpoint listening")["url"]
        d.wait_for(lambda e: e.get("event") == "job finished" and e.get("outcome") == "ok")
        health = httpx.get(url + "/healthz")
        metrics = httpx.get(url + "/metrics")
        scraped = time.time()
        assert httpx.get(url + "/nothing").status_code == 404
        assert d.stop() == 0
    assert (health.status_code, health.text) == (200, "ok\n")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    assert "triage_up 1" in lines
    assert any(line.startswith('triage_job_runs_total{job="tick",outcome="ok"} ') for line in lines)
    assert 'triage_job_failures_total{job="tick"} 0' in lines
    assert "# TYPE triage_items_analysed gauge" in lines and "triage_items_analysed 0" in lines
    assert "# TYPE triage_tokens_spent_total counter" in lines
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    # Times keep every digit (a rounded Unix time would be hours off).
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    last_ok = float(samples['triage_job_last_success_timestamp_seconds{job="tick"}'])
    assert scraped - 60 < last_ok <= scraped
    assert scraped - 60 < float(samples["process_start_time_seconds"]) <= scraped


@pytest.mark.postgres
def test_two_replicas_run_every_slot_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    cfg = setup(tmp_path, postgres_url)
    args = (*TICK, "--test-tick-seconds", "0.3")
    with (
        Daemon(cfg, *args, "--replica", "a", cwd=tmp_path) as a,
        Daemon(cfg, *args, "--replica", "b", cwd=tmp_path) as b,
    ):
        a.event("daemon started")
        b.event("daemon started")
        time.sleep(10)  # let both compete for ten one-second slots
        assert a.stop() == 0 and b.stop() == 0
    runs = job_runs(postgres_url)
    per_slot = Counter(r.slot for r in runs)
    assert per_slot and max(per_slot.values()) == 1, per_slot.most_common(3)
    assert sorted(per_slot) == sorted(slots(postgres_url))
    assert {r.outcome for r in runs} == {"ok"}
    # Both replicas were live the whole time, so no second of the run went without its tick.
    times = sorted(datetime.fromisoformat(s.rstrip("Z")) for s in per_slot)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert len(times) >= 8 and max(gaps) <= 2, times
