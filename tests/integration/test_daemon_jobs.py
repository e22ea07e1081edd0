"""The daemon in-process: failing jobs, empty successes, health answers, `triage status`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from jobs import registry, runs
from jobs.daemon import Daemon, Options
from jobs.registry import JobSpec
from tests.daemon_proc import cli, write_config
from tests.fakes.github import FakeGitHub
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate
from triage.db.schema import Item, JobRun


def make_ctx(db_url: str, **sections: object) -> Context:
    ctx = Context(
        config=Config.model_validate({"database": {"url": db_url}, **sections}), secrets=Secrets()
    )
    migrate.upgrade(ctx.engine)
    return ctx


def recorded(ctx: Context, job: str) -> list[JobRun]:
    """Finished runs of `job`."""
    with ctx.sessions() as s:
        stmt = select(JobRun).where(JobRun.job == job, JobRun.outcome != "running")
        return list(s.scalars(stmt.order_by(JobRun.id)))


def wait_until(test: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def started() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for d in daemons:
        if d.scheduler is not None and d.scheduler.running:
            d.shutdown()


def boom(_ctx: Context) -> dict[str, int]:
    raise RuntimeError("kaboom\nsecond line never shown")


def test_a_failing_job_is_counted_and_retried_at_its_next_slot(
    sqlite_url: str, started: list[Daemon]
) -> None:
    ctx = make_ctx(sqlite_url)
    specs = [
        JobSpec("boom", boom, "-", "always fails", schedule="every 1s"),
        registry.tick_job(1, 0.01),
    ]
    daemon = Daemon(ctx, specs)
    started.append(daemon)
    daemon.start()
    wait_until(lambda: len(recorded(ctx, "boom")) >= 2 and len(recorded(ctx, "tick")) >= 2)
    assert daemon.scheduler is not None and daemon.scheduler.running
    assert daemon.healthy() == (True, "ok")
    failures = recorded(ctx, "boom")
    assert len({r.slot for r in failures}) == len(failures)  # one run per slot, slot after slot
    assert {(r.outcome, r.error) for r in failures} == {("failed", "RuntimeError: kaboom")}
    assert {r.outcome for r in recorded(ctx, "tick")} == {"ok"}
    assert daemon.metrics.runs[("boom", "failed")] >= 2
    assert daemon.shutdown() == 0


def test_a_sync_where_every_request_fails_is_a_failure(sqlite_url: str) -> None:
    with FakeGitHub() as gh:
        gh.add_repo("acme/widgets", issues=3)
        gh.server_error(times=100)
        ctx = make_ctx(
            sqlite_url,
            github={"api_url": gh.base_url, "repos": ["acme/widgets"], "max_retries": 1},
        )
        ctx.config.github.retry_backoff = 0.01
        outcome = Daemon(ctx, [registry.JOBS["sync"]]).execute("sync", "slot-1")
    [run] = recorded(ctx, "sync")
    assert outcome == run.outcome == "failed"
    assert run.counts["sources_failed"] == 1 and run.counts["items"] == 0
    assert run.error and run.error.startswith("github:acme/widgets: GitHub API kept failing")


def test_one_bad_source_fails_the_run_but_the_others_are_synced(sqlite_url: str) -> None:
    with FakeGitHub() as gh:
        gh.add_repo("acme/widgets", issues=3)
        ctx = make_ctx(
            sqlite_url,
            github={"api_url": gh.base_url, "repos": ["acme/gone", "acme/widgets"]},
        )
        outcome = Daemon(ctx, [registry.JOBS["sync"]]).execute("sync", "slot-1")
    [run] = recorded(ctx, "sync")
    assert outcome == "failed" and "acme/gone" in (run.error or "")
    assert run.counts["items"] == 3
    with ctx.sessions() as s:
        assert len(list(s.scalars(select(Item.key)))) == 3


def test_no_sources_configured_is_skipped_not_failed(sqlite_url: str) -> None:
    ctx = make_ctx(sqlite_url)
    assert Daemon(ctx, [registry.JOBS["sync"]]).execute("sync", "slot-1") == "skipped"
    [run] = recorded(ctx, "sync")
    assert run.error and "no sources configured" in run.error


def test_healthz_turns_503_when_the_scheduler_stops(sqlite_url: str, started: list[Daemon]) -> None:
    ctx = make_ctx(sqlite_url)
    daemon = Daemon(ctx, [registry.tick_job(60, 0)], Options(health_port=0))
    started.append(daemon)
    daemon.start()
    url = daemon.health.url
    assert httpx.get(url + "/healthz").status_code == 200
    assert daemon.scheduler is not None
    daemon.scheduler.shutdown(wait=False)
    resp = httpx.get(url + "/healthz")
    assert (resp.status_code, resp.text) == (503, "scheduler not running\n")
    assert "triage_up 0" in httpx.get(url + "/metrics").text.splitlines()
    daemon.shutdown()


@pytest.mark.postgres
def test_healthz_turns_503_when_the_database_stops_answering(
    postgres_url: str, started: list[Daemon]
) -> None:
    ctx = make_ctx(postgres_url)
    daemon = Daemon(ctx, [registry.tick_job(60, 0)], Options(health_port=0))
    started.append(daemon)
    daemon.start()
    url = daemon.health.url
    assert httpx.get(url + "/healthz").status_code == 200
    ctx.engine.dispose()
    admin = create_engine(
        postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{postgres_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()
    resp = httpx.get(url + "/healthz")
    assert resp.status_code == 503 and resp.text.startswith("database not answering")
    daemon.shutdown()


def test_status_shows_each_jobs_last_run_next_run_and_failures(
    tmp_path: Path, sqlite_url: str
) -> None:
    ctx = make_ctx(sqlite_url, schedule={"themes": "off"})
    daemon = Daemon(ctx, [registry.JOBS["sync"], JobSpec("boom", boom, "-", "fails", "every 1h")])
    daemon.execute("sync", "2025-01-01T00:00:00Z")
    daemon.execute("boom", "2025-01-01T00:00:00Z")
    cfg = write_config(
        tmp_path / "triage.toml", {"database": {"url": sqlite_url}, "schedule": {"themes": "off"}}
    )
    result = cli("--config", str(cfg), "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    jobs = data["jobs"]
    assert jobs["sync"]["outcome"] == "skipped" and jobs["sync"]["next_run"]
    assert jobs["sync"]["schedule"] == "every 15m"
    assert jobs["themes"]["off"] == "[schedule] themes = off" and jobs["themes"]["next_run"] is None
    assert jobs["digest"]["started_at"] is None and jobs["digest"]["next_run"]
    assert jobs["boom"]["outcome"] == "failed"
    assert data["job_failures_24h"] == 1
    assert data["recent_failures"][0]["error"] == "RuntimeError: kaboom"
    table = cli("--config", str(cfg), "status")
    assert table.exit_code == 0 and "next run" in table.output
    # Config sections in the table are text, not markup; times to the second fit a terminal.
    assert "[schedule]" in table.output
    sync_started = jobs["sync"]["started_at"]
    assert sync_started[11:19] in table.output and sync_started[19:] not in table.output
    assert "boom failed: RuntimeError: kaboom" in table.output


def test_a_run_left_open_by_a_dead_replica_is_closed_by_the_next_one(db_url: str) -> None:
    ctx = make_ctx(db_url)
    dead = runs.start(ctx.sessions, "tick", "2025-01-01T00:00:00Z", "dead-replica")
    daemon = Daemon(ctx, [registry.tick_job(60, 0)], Options(replica="alive"))
    if ctx.engine.dialect.name == "sqlite":
        daemon.acquire()  # the one daemon on a SQLite file closes them at start-up
    assert daemon.execute("tick", "2025-01-01T00:01:00Z") == "ok"
    daemon._cleanup()
    with ctx.sessions() as s:
        left = s.get(JobRun, dead)
        assert left is not None and left.outcome == "interrupted"
        assert left.error == "the daemon stopped during the run"


def test_the_digest_waits_for_a_sync_running_on_any_replica(sqlite_url: str) -> None:
    import threading

    ctx = make_ctx(sqlite_url)
    run_id = runs.start(ctx.sessions, "sync", "s1", "other-replica")
    done = threading.Event()
    waiter = threading.Thread(
        target=lambda: (registry.wait_for_ingest(ctx, grace=0.0, limit=60.0), done.set())
    )
    waiter.start()
    assert not done.wait(2.5)  # still waiting: the sync is running
    runs.finish(ctx.sessions, run_id, runs.OK)
    assert done.wait(15.0)  # released once the sync is over
    waiter.join()
