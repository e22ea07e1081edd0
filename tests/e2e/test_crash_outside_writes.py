"""SIGKILL while an outside write is in flight (the fake holding it), then re-run: each label and
each Slack message exactly once, and triage's own writes recognised as its own."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.e2e.cli import run_triage, triage_env
from tests.fakes.github import FakeGitHub
from tests.fakes.server import Hold
from tests.fakes.slack import CHANNEL_ID, FakeSlack
from tests.fakes.slack import TOKEN as SLACK_TOKEN
from tests.integration.test_digest_slack import END, seed_large
from tests.label_seed import REPO, TOKEN, analyse, human_removes, label_posts, make_ctx, sync
from triage.db import migrate
from triage.db.engine import make_engine
from triage.db.schema import LabelCorrection, LabelWrite


def killed_while_held(args: list[str], cwd: Path, env: dict[str, str], hold: Hold) -> None:
    """Run `triage ARGS`, SIGKILL it once the fake holds its request, then let the request land."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=triage_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert hold.reached.wait(timeout=60), "the request was never sent"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        hold.release()  # the worst case: the write reaches the service after the crash
        if proc.poll() is None:
            proc.kill()
    assert hold.served.wait(timeout=30), "the held request was never answered"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        yield fake


def test_label_write_killed_in_flight_is_recognised_as_triages_own(
    gh: FakeGitHub, db_url: str, tmp_path: Path
) -> None:
    gh.add_issue(REPO, "crash", "it crashes")
    ctx = make_ctx(db_url, gh)
    sync(ctx)
    analyse(ctx, 1, "bug", 0.9)
    env = {
        "TRIAGE_DATABASE__URL": db_url,
        "TRIAGE_GITHUB__API_URL": gh.base_url,
        "TRIAGE_GITHUB__REPOS": f'["{REPO}"]',
        "GITHUB_TOKEN": TOKEN,
        "COLUMNS": "200",
    }
    hold = gh.hold(rf"/repos/{REPO}/issues/1/labels$", after=0)

    killed_while_held(["label", "--apply"], tmp_path, env, hold)
    assert gh.repo(REPO).issues[1].labels == ["bug"]  # the write landed; its record did not
    assert run_triage("sync", cwd=tmp_path, env=env).returncode == 0
    rerun = run_triage("label", "--apply", cwd=tmp_path, env=env)

    assert rerun.returncode == 0, rerun.stderr
    assert "labelled by a human" not in rerun.stdout + rerun.stderr
    assert gh.repo(REPO).issues[1].labels == ["bug"] and label_posts(gh, 1) == 1
    with ctx.sessions() as s:
        assert [(w.label, w.status) for w in s.scalars(select(LabelWrite))] == [("bug", "applied")]
    # Triage's own label: a later human removal is a correction, never written again.
    human_removes(gh, 1, "bug")
    assert run_triage("sync", cwd=tmp_path, env=env).returncode == 0
    assert run_triage("label", "--apply", cwd=tmp_path, env=env).returncode == 0
    with ctx.sessions() as s:
        assert s.scalar(select(LabelCorrection.label)) == "bug"
    assert gh.repo(REPO).issues[1].labels == [] and label_posts(gh, 1) == 1
    ctx.close()


def digest_env(db_url: str, fake: FakeSlack) -> dict[str, str]:
    """A long (threaded) digest to the fake Slack, from a seeded database."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    seed_large(engine)
    engine.dispose()
    return {
        "TRIAGE_DATABASE__URL": db_url,
        "TRIAGE_SLACK__BASE_URL": fake.api_url,
        "TRIAGE_SLACK__UPLOAD_CHART": "false",
        "TRIAGE_DIGEST__TOP_THEMES": "60",
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
    }


DIGEST = ["digest", "--until", f"{END:%Y-%m-%dT%H:%M}Z", "--window", "1d", "--to", "slack"]


def assert_each_part_once(fake: FakeSlack) -> None:
    parent, *replies = fake.messages
    total = len(fake.messages)
    assert total >= 4 and all(r.thread_ts == parent.ts for r in replies)
    texts = [m.text for m in fake.messages]
    assert len(set(texts)) == total, texts  # no part twice
    assert f"(part {total}/{total})" in texts[-1]


def test_threaded_digest_killed_while_part_3_is_in_flight_posts_each_part_once(
    db_url: str, tmp_path: Path
) -> None:
    with FakeSlack() as fake:
        env, args = digest_env(db_url, fake), DIGEST
        hold = fake.hold(r"/api/chat\.postMessage$", after=2)  # part 3 waits

        killed_while_held(args, tmp_path, env, hold)
        assert len(fake.messages) == 3
        rerun = run_triage(*args, cwd=tmp_path, env=env)

        assert rerun.returncode == 0, rerun.stderr
        assert "resumed after 3" in rerun.stdout + rerun.stderr
        assert_each_part_once(fake)


@pytest.mark.parametrize("landed", [True, False], ids=["parent-landed", "parent-lost"])
def test_threaded_digest_killed_while_the_parent_is_in_flight_posts_it_once(
    db_url: str, tmp_path: Path, landed: bool
) -> None:
    with FakeSlack() as fake:
        # conversations.history takes a channel id, so the channel is configured by id.
        env = {**digest_env(db_url, fake), "TRIAGE_SLACK__CHANNEL": CHANNEL_ID}
        hold = fake.hold(r"/api/chat\.postMessage$", after=0)  # the parent waits

        killed_while_held(DIGEST, tmp_path, env, hold)
        assert len(fake.messages) == 1
        if not landed:
            fake.messages.clear()  # the post never reached Slack
        rerun = run_triage(*DIGEST, cwd=tmp_path, env=env)  # at once: no stale-claim wait

        assert rerun.returncode == 0, rerun.stderr
        assert ("resumed after 1" in rerun.stdout + rerun.stderr) is landed
        assert_each_part_once(fake)
        assert fake.messages[0].args["metadata"]["event_payload"]["part"] == 0
