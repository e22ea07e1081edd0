"""`triage digest` as a user runs it, against the fake Slack server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.digest_seed import Seed, hours
from tests.fakes.slack import TOKEN, FakeSlack
from triage.db import migrate
from triage.db.engine import make_engine

from .cli import run_triage

END = datetime(2025, 5, 12, 9)
UNTIL = "2025-05-12T09:40:00Z"  # aligned down to 09:00: the same window as END


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


@pytest.fixture
def env(tmp_path: Path, fake: FakeSlack) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    s = Seed(engine)
    theme = s.theme("Login fails")
    for i in range(5):
        s.assign(s.item(END - hours(i + 1), title=f"<!channel> login {i}"), theme)
    s.flush()
    engine.dispose()
    return {
        "TRIAGE_DATABASE__URL": url,
        "TRIAGE_SLACK__BASE_URL": fake.api_url,
        "TRIAGE_SLACK__UPLOAD_CHART": "false",
        "TRIAGE_DIGEST__OUT_DIR": str(tmp_path / "digests"),
        "SLACK_BOT_TOKEN": TOKEN,
    }


def test_second_run_for_the_same_window_posts_nothing(
    tmp_path: Path, fake: FakeSlack, env: dict[str, str]
) -> None:
    first = run_triage("digest", "--until", UNTIL, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "posted 1 message(s) to #triage" in first.stdout
    second = run_triage("digest", "--until", "2025-05-12T09:05Z", cwd=tmp_path, env=env)
    assert second.returncode == 0 and "already posted" in second.stdout
    assert len(fake.messages) == 1
    forced = run_triage("digest", "--until", UNTIL, "--force", cwd=tmp_path, env=env)
    assert forced.returncode == 0 and len(fake.messages) == 2
    assert "&lt;!channel&gt; login" in json.dumps(fake.messages[0].blocks)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"TRIAGE_SLACK__CHANNEL": "#nope"}, "error: Slack channel #nope not found"),
        ({"SLACK_BOT_TOKEN": "xoxb-9999-bad-token"}, "error: Slack rejected SLACK_BOT_TOKEN"),
    ],
)
def test_slack_refusals_exit_1_with_one_line(
    tmp_path: Path, env: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    result = run_triage("digest", "--until", UNTIL, cwd=tmp_path, env={**env, **extra})
    assert result.returncode == 1
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "bad-token" not in result.stderr


def test_dry_run_prints_the_payload_and_posts_nothing(
    tmp_path: Path, fake: FakeSlack, env: dict[str, str]
) -> None:
    result = run_triage("digest", "--until", UNTIL, "--dry-run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert '"type": "header"' in result.stdout and "would post 1 message(s)" in result.stdout
    assert fake.requests == []


def test_without_slack_auto_writes_markdown(tmp_path: Path, env: dict[str, str]) -> None:
    no_slack = {k: v for k, v in env.items() if k != "SLACK_BOT_TOKEN"}
    result = run_triage("digest", "--until", UNTIL, "--window", "7d", cwd=tmp_path, env=no_slack)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "digests" / "digest-2025-05-12T0900Z-7d.md"
    assert path.read_text().startswith("# Triage digest: 2025-05-05 09:00 → 2025-05-12 09:00")
    assert "Login fails" in path.read_text() and f"wrote {path}" in result.stdout


def test_bad_usage_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_triage("digest", "--window", "7 days", cwd=tmp_path, env=env)
    assert result.returncode == 2 and result.stderr.startswith("error: invalid window '7 days'")


def test_slack_requested_but_not_configured_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    no_slack = {k: v for k, v in env.items() if k != "SLACK_BOT_TOKEN"}
    result = run_triage("digest", "--to", "slack", cwd=tmp_path, env=no_slack)
    assert result.returncode == 2 and "set SLACK_BOT_TOKEN" in result.stderr
