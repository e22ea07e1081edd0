"""`triage backfill github`, `sync` and `doctor` as a user runs them, against the fake GitHub."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fakes.github import FakeGitHub
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory
from triage.db.schema import Item

from .cli import run_triage, triage_env


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def env(gh: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    values = {
        "TRIAGE_DATABASE__URL": f"sqlite:///{tmp_path / 'triage.db'}",
        "TRIAGE_GITHUB__API_URL": gh.base_url,
        "TRIAGE_GITHUB__RETRY_BACKOFF": "0.01",
        "TRIAGE_GITHUB__SECONDARY_RATE_WAIT": "0.01",
        "TRIAGE_LLM__PROVIDER": "local",
    }
    engine = make_engine(values["TRIAGE_DATABASE__URL"])
    migrate.upgrade(engine)
    engine.dispose()
    return values


def numbers(tmp_path: Path, repo: str = "octo/hello") -> list[int]:
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    try:
        with session_factory(engine)() as s:
            return sorted(s.scalars(select(Item.number).where(Item.scope == repo)))
    finally:
        engine.dispose()


def cursor(tmp_path: Path, name: str = "backfill:github:octo/hello") -> str | None:
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    try:
        with session_factory(engine)() as s:
            row = store.get_cursor(s, name)
            return row.value if row else None
    finally:
        engine.dispose()


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_backfill_imports_history_and_a_rerun_only_applies_changes(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=250, prs_every=10)

    first = run_triage(
        "backfill", "github", "octo/hello", cwd=tmp_path, env={**env, "COLUMNS": "200"}
    )

    assert first.returncode == 0, first.stderr
    assert "225 items (225 new, 0 updated, 0 unchanged, 25 skipped) in 3 requests" in first.stdout
    # The progress bar: items so far, items per second, and the API quota the last answer left.
    assert re.search(r"github:octo/hello .* 225 items +\d+/s +quota 4997 ", first.stderr)
    assert numbers(tmp_path) == [n for n in range(1, 251) if n % 10]

    gh.edit_issue("octo/hello", 7, title="Edited")
    again = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stderr
    assert "(0 new, 1 updated, 0 unchanged" in again.stdout and "in 1 requests" in again.stdout
    assert len(numbers(tmp_path)) == 225

    status = run_triage("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    cursors = {c["name"]: c for c in data["cursors"]}
    backfilled = cursors["backfill:github:octo/hello"]
    assert backfilled["done"] and backfilled["value"] == cursor(tmp_path)
    assert cursors["sync:github:octo/hello"]["value"] == backfilled["value"]
    assert data["items"] == {"github": 225} and data["backlog"] == 225


def test_backfill_killed_mid_way_resumes_and_stores_every_item_once(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=1000, prs_every=10)
    hold = gh.hold(r"/issues$", after=3)  # the 4th page waits until we say so
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "backfill", "github", "octo/hello"],
        cwd=tmp_path,
        env=triage_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert hold.reached.wait(timeout=60), "the backfill never asked for page 4"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()

    assert numbers(tmp_path) == [n for n in range(1, 301) if n % 10]
    assert cursor(tmp_path) == "2020-01-13T12:30:00Z"  # issue 300, the end of page 3
    gh.requests.clear()

    rerun = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=env)

    assert rerun.returncode == 0, rerun.stderr
    assert gh.requests[0].query["since"] == ["2020-01-13T12:30:00Z"]
    assert numbers(tmp_path) == [n for n in range(1, 1001) if n % 10]


def test_rate_limit_beyond_the_cap_exits_1_with_when_to_resume(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=450)
    gh.used = gh.limit - 2
    gh.reset_at = time.time() + 3600
    capped = {**env, "TRIAGE_GITHUB__MAX_RATE_LIMIT_WAIT": "60"}

    stopped = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=capped)

    assert stopped.returncode == 1
    line = error_line(stderr=stopped.stderr)
    assert "rate limit used up" in line and "resets at" in line and "re-run" in line
    assert len(numbers(tmp_path)) == 200 and cursor(tmp_path) == "2020-01-09T08:30:00Z"

    gh.reset_at = time.time() - 1
    resumed = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=capped)
    assert resumed.returncode == 0, resumed.stderr
    assert numbers(tmp_path) == list(range(1, 451))


def test_unknown_repository_exits_1_with_one_line(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    result = run_triage("backfill", "github", "octo/nope", cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert error_line(result.stderr).startswith("error: GitHub repository octo/nope not found")


def test_revoked_token_exits_1_naming_github_token(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=5)
    gh.revoked_tokens.add("ghp_old0123456789")
    bad = {**env, "GITHUB_TOKEN": "ghp_old0123456789"}

    result = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=bad)

    assert result.returncode == 1
    assert "GITHUB_TOKEN" in error_line(result.stderr)
    assert "ghp_old0123456789" not in result.stdout + result.stderr


def test_sync_expands_an_org_on_github_enterprise(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("acme/api", issues=120, org=True)
    gh.add_repo("acme/web", issues=3, org=True)
    ghe = {
        **env,
        "TRIAGE_GITHUB__API_URL": gh.ghe_url,
        "TRIAGE_GITHUB__REPOS": '["acme/*"]',
        "GITHUB_TOKEN": "ghp_valid",
    }

    result = run_triage("sync", cwd=tmp_path, env=ghe)

    assert result.returncode == 0, result.stderr
    assert len(numbers(tmp_path, "acme/api")) == 120 and len(numbers(tmp_path, "acme/web")) == 3
    assert all(r.path.startswith("/api/v3/") for r in gh.requests)
    assert cursor(tmp_path, "sync:github:acme/web") == "2020-01-01T03:30:00Z"


def test_doctor_reports_github_reachability_and_token(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    configured = {
        **env,
        "TRIAGE_GITHUB__REPOS": '["octo/hello"]',
        "GITHUB_TOKEN": "ghp_valid",
        "COLUMNS": "300",  # one check, one line
    }

    good = run_triage("doctor", cwd=tmp_path, env=configured)
    line = next(x for x in good.stdout.splitlines() if "github:" in x)
    assert line.startswith("ok") and "token accepted" in line and "5000/5000" in line

    gh.revoked_tokens.add("ghp_valid")
    bad = run_triage("doctor", cwd=tmp_path, env=configured)
    line = next(x for x in bad.stdout.splitlines() if "github:" in x)
    assert line.startswith("fail") and "GITHUB_TOKEN" in line and bad.returncode != 0


def test_ctrl_c_mid_way_says_what_is_saved_and_the_rerun_continues(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=1000)
    hold = gh.hold(r"/issues$", after=3)  # the 4th page waits until we say so
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "backfill", "github", "octo/hello"],
        cwd=tmp_path,
        env=triage_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.reached.wait(timeout=60), "the backfill never asked for page 4"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 130
    line = error_line(stderr)
    assert "interrupted" in line and "300 items saved" in line and "again" in line
    assert numbers(tmp_path) == list(range(1, 301))

    rerun = run_triage("backfill", "github", "octo/hello", cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert numbers(tmp_path) == list(range(1, 1001))


def test_since_takes_a_date_and_a_bad_one_is_one_line_exit_2(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=100)

    bad = run_triage(
        "backfill", "github", "octo/hello", "--since", "yesterday", cwd=tmp_path, env=env
    )

    assert bad.returncode == 2
    assert error_line(bad.stderr).startswith("error: --since 'yesterday' is not a date")
    assert len(bad.stderr.strip().splitlines()) == 1 and not gh.requests

    good = run_triage(
        "backfill",
        "github",
        "octo/hello",
        "--since",
        "2020-01-04T02:00+02:00",
        cwd=tmp_path,
        env=env,
    )
    assert good.returncode == 0, good.stderr
    assert gh.requests[0].query["since"] == ["2020-01-04T00:00:00Z"]
    assert numbers(tmp_path) == list(range(72, 101))


def test_sync_goes_on_past_a_failing_repository_and_exits_1_naming_it(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=5)
    gh.add_repo("acme/api", issues=3, org=True)
    repos = {**env, "TRIAGE_GITHUB__REPOS": '["octo/nope", "ghost/*", "octo/hello", "acme/*"]'}

    result = run_triage("sync", cwd=tmp_path, env=repos)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("error: 2 sources failed (the others were synced)")
    assert "octo/nope not found" in line and "'ghost' not found" in line
    assert numbers(tmp_path) == [1, 2, 3, 4, 5] and numbers(tmp_path, "acme/api") == [1, 2, 3]

    only = run_triage("sync", "--source", "api", cwd=tmp_path, env=repos)
    assert only.returncode == 1  # `ghost/*` might hold a matching repository
    assert "github:acme/api:" in only.stdout and "octo/hello" not in only.stdout
    assert "octo/nope" not in only.stderr and "'ghost' not found" in error_line(only.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["github", "/hello"], "error: expected OWNER/REPO, got '/hello'"),
        (["stackoverflow", " "], "error: expected a tag"),
    ],
)
def test_a_malformed_backfill_target_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_triage("backfill", *args, cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert error_line(result.stderr).startswith(message)


def test_the_same_repository_in_two_spellings_is_stored_once(
    gh: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    gh.add_repo("octo/hello", issues=5)
    for spelling in ("octo/hello", "Octo/Hello"):
        r = run_triage("backfill", "github", spelling, cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
    assert numbers(tmp_path) == [1, 2, 3, 4, 5]
    engine = make_engine(env["TRIAGE_DATABASE__URL"])
    with session_factory(engine)() as s:
        keys = sorted(s.scalars(select(Item.key)))
    engine.dispose()
    assert keys == [f"github:octo/hello#{n}" for n in range(1, 6)]
