"""`triage backfill stackoverflow`, `sync` and `doctor` as a user runs them, against the fake."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from tests.fakes.stackexchange import FakeStackExchange, sample_question
from triage.db import migrate
from triage.db.engine import make_engine
from triage.db.schema import Item

from .cli import run_triage, triage_env

TAG = "google-gemini"


@pytest.fixture
def fake() -> Iterator[FakeStackExchange]:
    with FakeStackExchange(250) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeStackExchange) -> dict[str, str]:
    env = {
        "TRIAGE_DATABASE__URL": f"sqlite:///{tmp_path / 'triage.db'}",
        "TRIAGE_STACKEXCHANGE__API_URL": fake.base_url,
        "TRIAGE_STACKEXCHANGE__TAGS": f'["{TAG}"]',
        "TRIAGE_STACKEXCHANGE__MAX_BACKOFF_WAIT": "5",
        "TRIAGE_LLM__PROVIDER": "local",
        "COLUMNS": "200",  # one check per line, however long
    }
    engine = make_engine(env["TRIAGE_DATABASE__URL"])
    migrate.upgrade(engine)  # in-process: one subprocess less per test
    engine.dispose()
    return env


def stored(tmp_path: Path) -> int:
    engine = create_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(Item))
    engine.dispose()
    return int(n or 0)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_backfill_then_sync_picks_up_an_edit(
    tmp_path: Path, env: dict[str, str], fake: FakeStackExchange
) -> None:
    done = run_triage("backfill", "stackoverflow", TAG, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "250 new" in done.stdout and "complete" in done.stdout
    assert stored(tmp_path) == 250

    fake.edit_question(70_000_001, title="Edited")
    synced = run_triage("sync", "--source", "stackexchange", cwd=tmp_path, env=env)
    assert synced.returncode == 0, synced.stderr
    assert "0 new, 1 updated" in synced.stdout
    assert stored(tmp_path) == 250


def test_unknown_site_is_one_line_and_exit_1(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_triage(
        "backfill", "stackoverflow", TAG, "--site", "nosuchsite", cwd=tmp_path, env=env
    )
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert "unknown Stack Exchange site 'nosuchsite'" in line
    assert "Traceback" not in result.stderr


def test_quota_used_up_exits_1_keeps_progress_and_rerun_continues(
    tmp_path: Path, env: dict[str, str], fake: FakeStackExchange
) -> None:
    fake.set_quota(remaining=3)  # the tag check, then two pages
    first = run_triage("backfill", "stackoverflow", TAG, cwd=tmp_path, env=env)
    assert first.returncode == 1
    [line] = error_lines(first.stderr)
    assert "quota used up" in line and "resets at" in line and "Progress is saved" in line
    kept = stored(tmp_path)
    assert 190 <= kept < 250

    fake.reset_quota()
    before = len(fake.question_calls())
    second = run_triage("backfill", "stackoverflow", TAG, cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert fake.question_calls()[before].arg("min") is not None  # continued, not restarted
    assert f"{250 - kept} new" in second.stdout
    assert stored(tmp_path) == 250


def test_key_is_sent_but_never_printed(
    tmp_path: Path, env: dict[str, str], fake: FakeStackExchange
) -> None:
    fake.valid_keys = {"another-key"}
    secret = "s3cr3t-key-value"
    result = run_triage("--debug", "sync", cwd=tmp_path, env={**env, "STACKEXCHANGE_KEY": secret})
    assert result.returncode == 1
    assert fake.question_calls()[0].arg("key") == secret
    assert "STACKEXCHANGE_KEY" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_doctor_reports_endpoint_and_quota(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_triage("doctor", cwd=tmp_path, env=env)
    assert "ok   config: no triage.toml: defaults and TRIAGE_* environment" in result.stdout
    [line] = [ln for ln in result.stdout.splitlines() if "stackexchange:" in ln]
    assert line.startswith("ok") and "reachable" in line and "quota 299/300" in line

    bad = run_triage(
        "doctor", cwd=tmp_path, env={**env, "TRIAGE_STACKEXCHANGE__SITE": "nosuchsite"}
    )
    assert bad.returncode == 1
    [line] = [ln for ln in bad.stdout.splitlines() if "stackexchange:" in ln]
    assert line.startswith("fail") and "nosuchsite" in line


def test_backfill_killed_mid_way_resumes_with_every_question_once(
    tmp_path: Path, env: dict[str, str], fake: FakeStackExchange
) -> None:
    for i in range(250, 400):
        fake.put(sample_question(i))
    hold = fake.hold(r"/questions$", after=2)  # the 3rd page waits until we say so
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "backfill", "stackoverflow", TAG],
        cwd=tmp_path,
        env=triage_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert hold.reached.wait(timeout=60), "the backfill never asked for page 3"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    kept = stored(tmp_path)
    assert 0 < kept < 400, "the kill should land mid-way"

    before = len(fake.question_calls())
    result = run_triage("backfill", "stackoverflow", TAG, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert fake.question_calls()[before].arg("min") is not None
    assert stored(tmp_path) == 400


def test_an_unknown_or_malformed_tag_is_one_line_exit_2_and_stores_nothing(
    tmp_path: Path, env: dict[str, str], fake: FakeStackExchange
) -> None:
    for tag, expected in (
        ("no-such-tag", "does not exist on stackoverflow"),
        ("[google-gemini]", "(write 'google-gemini')"),
    ):
        r = run_triage("backfill", "stackoverflow", tag, cwd=tmp_path, env=env)
        assert r.returncode == 2, r.stderr
        [line] = error_lines(r.stderr)
        assert expected in line, line
        assert stored(tmp_path) == 0
