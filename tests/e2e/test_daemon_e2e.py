"""`triage run` against every fake at once: it syncs, analyses, posts one digest, labels once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import tests.fakes.themes_model  # noqa: F401  (the fake Gemini answers themes prompts)
from tests.daemon_proc import Daemon, write_config
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import CHANNEL_ID, TOKEN, FakeSlack
from tests.fakes.stackexchange import FakeStackExchange
from triage.db import migrate
from triage.db.engine import make_engine
from triage.db.schema import Analysis, Item, JobRun, LabelCorrection, ThemeItem

REPO = "acme/widgets"
EVERY = "every 1s"


@dataclass
class Fakes:
    github: FakeGitHub
    stackexchange: FakeStackExchange
    gemini: FakeGemini
    slack: FakeSlack


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with (
        FakeGitHub() as gh,
        FakeStackExchange(questions=0) as se,
        FakeGemini() as gemini,
        FakeSlack() as slack,
    ):
        gh.add_repo(REPO)
        gh.add_issue(REPO, "App crashes on start", "Segfault when I open the settings page.")
        gh.add_issue(REPO, "Please add a dark mode", "It would be nice to support dark themes.")
        gh.add_issue(REPO, "How do I set a proxy?", "Where does the proxy setting go?")
        gh.add_issue(REPO, "Thanks for the release", "Works well for us.")  # no label fits
        # One problem reported on both sources, for the themes job to group.
        gh.add_issue(
            REPO,
            "Streaming response stops early",
            "The stream stops after the first chunk: generate_content_stream output is cut off.",
        )
        se.add_question(
            "Stream stops with generate_content_stream",
            "<p>My streaming response gives truncated output after one chunk.</p>",
        )
        se.add_question("Gemini API returns an error on long prompts", "<p>I get an error.</p>")
        se.add_question("How to stream answers?", "<p>Is streaming supported?</p>")
        yield Fakes(gh, se, gemini, slack)


def wait_until(test: Callable[[], bool], daemon: Daemon, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline or daemon.proc is None or daemon.proc.poll() is not None:
            raise AssertionError("condition not reached; log:\n" + "\n".join(daemon.lines[-60:]))
        time.sleep(0.2)


def label_posts(gh: FakeGitHub) -> Counter[str]:
    return Counter(r.path for r in gh.requests_to(rf"/repos/{REPO}/issues/\d+/labels$", "POST"))


def digests(slack: FakeSlack) -> list[str]:
    return [m.ts for m in slack.messages if m.thread_ts is None and m.channel == CHANNEL_ID]


def test_the_daemon_keeps_everything_current_against_all_fakes(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    cfg = write_config(
        tmp_path / "triage.toml",
        {
            "database": {"url": sqlite_url},
            "github": {"api_url": fakes.github.base_url, "repos": [REPO]},
            "stackexchange": {"api_url": fakes.stackexchange.base_url, "tags": ["google-gemini"]},
            "llm": {"provider": "gemini", "gemini": {"base_url": fakes.gemini.base_url}},
            "slack": {"base_url": fakes.slack.api_url, "channel": "#triage", "upload_chart": False},
            "labels": {"apply": True},
            # The fakes' clocks start in 2020: windows wide enough to hold their items.
            "themes": {"window": "5000d"},
            "digest": {"window": "5000d"},
            "schedule": {
                "sync": EVERY,
                "analyze": "every 1h",  # runs after each sync that brought items
                "themes": "every 2s",
                "duplicates": "every 2s",
                "digest": EVERY,
                "labels": EVERY,
                "poll": "off",
            },
        },
    )
    env = {
        "GITHUB_TOKEN": "ghp_" + "e" * 36,
        "GEMINI_API_KEY": DEFAULT_KEY,
        "SLACK_BOT_TOKEN": TOKEN,
    }
    gh = fakes.github
    with Daemon(cfg, "--health-port", "0", cwd=tmp_path, env=env) as daemon:
        url = daemon.event("health endpoint listening")["url"]
        wait_until(lambda: len(label_posts(gh)) == 3 and len(digests(fakes.slack)) == 1, daemon)
        assert [gh.repo(REPO).issues[n].labels for n in (1, 2, 3, 4, 5)] == [
            ["bug"],
            ["enhancement"],
            ["question"],
            [],
            [],
        ]
        # A maintainer disagrees with one label; the next sync sees it gone.
        resp = httpx.delete(
            f"{gh.base_url}/repos/{REPO}/issues/1/labels/bug",
            headers={"Authorization": "token maintainer"},
        )
        assert resp.status_code == 200
        with engine.connect() as conn:
            wait_until(
                lambda: conn.scalar(select(func.count()).select_from(LabelCorrection)) == 1, daemon
            )
            conn.rollback()
        seen = len(daemon.lines)
        # Several more slots of every job go by.
        wait_until(lambda: sum("job finished" in x for x in daemon.lines[seen:]) >= 12, daemon)
        health = httpx.get(url + "/healthz")
        metrics = httpx.get(url + "/metrics").text
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0

    assert health.status_code == 200
    # Each label written once; the one a human removed was never added again.
    assert label_posts(gh) == Counter({f"/repos/{REPO}/issues/{n}/labels": 1 for n in (1, 2, 3)})
    assert gh.repo(REPO).issues[1].labels == []
    assert len(digests(fakes.slack)) == 1
    with engine.connect() as conn:
        items = conn.scalar(select(func.count()).select_from(Item))
        analysed = conn.scalar(select(func.count(func.distinct(Analysis.item_key))))
        outcomes = Counter(conn.execute(select(JobRun.job, JobRun.outcome)).all())
        themed = conn.scalar(select(func.count()).select_from(ThemeItem))
    assert items == 8 and analysed == 8
    assert outcomes[("sync", "ok")] >= 3 and outcomes[("labels", "ok")] >= 3
    assert outcomes[("analyze", "ok")] >= 1 and outcomes[("digest", "ok")] >= 2
    assert outcomes[("themes", "ok")] >= 1 and outcomes[("duplicates", "ok")] >= 1
    assert themed and themed > 0
    assert not [k for k in outcomes if k[1] in ("failed", "running")], outcomes
    assert 'triage_items_stored{source="github"} 5' in metrics.splitlines()
    assert 'triage_label_writes{status="applied"} 3' in metrics.splitlines()
    engine.dispose()
