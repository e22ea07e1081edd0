"""`make run` on a fresh machine: `triage init`, then `triage run` with the example config.

The example sources are kept as they are; only their base URLs point at the fakes (tests never
reach the real services).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.daemon_proc import Daemon
from tests.e2e.cli import run_triage
from tests.fakes.github import FakeGitHub
from tests.fakes.stackexchange import FakeStackExchange

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
[REPO] = EXAMPLE["github"]["repos"]
[TAG] = EXAMPLE["stackexchange"]["tags"]
QUICK = {  # no waiting between retries
    "TRIAGE_GITHUB__RETRY_BACKOFF": "0.01",
    "TRIAGE_GITHUB__MAX_RETRIES": "0",
    "TRIAGE_STACKEXCHANGE__MAX_RETRIES": "0",
}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGitHub, FakeStackExchange]]:
    now = datetime.now(UTC)
    with FakeGitHub() as gh, FakeStackExchange() as se:
        gh.add_repo(REPO)
        gh.clock = now - timedelta(days=400)
        gh.add_issue(REPO, "Ancient notebook request", "From long before the first sync starts.")
        gh.clock = now - timedelta(days=20)
        gh.add_issue(REPO, "Notebook crashes on image upload", "The upload cell fails with 500.")
        gh.add_issue(REPO, "Add an example for function calling", "A short notebook would help.")
        old = int((now - timedelta(days=300)).timestamp())
        se.add_question("Ancient question about Bard", "<p>Old.</p>", tags=[TAG], created=old)
        recent = int((now - timedelta(days=10)).timestamp())
        se.add_question(
            "Gemini API returns 429 on the free tier",
            "<p>Every second request is refused.</p>",
            tags=[TAG],
            created=recent,
        )
        yield gh, se


def _init(tmp_path: Path) -> Path:
    r = run_triage("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "watching the example sources" in r.stdout
    return tmp_path / "triage.toml"


def test_make_run_writes_a_digest_of_the_example_sources_at_once(
    tmp_path: Path, fakes: tuple[FakeGitHub, FakeStackExchange]
) -> None:
    gh, se = fakes
    cfg = _init(tmp_path)
    env = {"TRIAGE_GITHUB__API_URL": gh.base_url, "TRIAGE_STACKEXCHANGE__API_URL": se.base_url}
    with Daemon(cfg, "--health-port", "0", cwd=tmp_path, env={**env, **QUICK}) as d:
        url = d.event("health endpoint listening")["url"]
        written = d.event("digest written", timeout=120)
        done = d.event("catch-up cycle done; the jobs now follow [schedule]", timeout=60)
        assert httpx.get(url + "/healthz").status_code == 200
        assert d.stop() == 0
    events = [e["event"] for e in d.events]
    # No key: the local provider, said once; the first slot (15 minutes away) was not awaited.
    assert sum(e.startswith("GEMINI_API_KEY is not set: analysing with the local") for e in events)
    assert sum(e.startswith("GEMINI_API_KEY is not set") for e in events) == 1
    assert done["timestamp"] < d.event("stopped")["timestamp"]
    page = (tmp_path / written["path"]).read_text(encoding="utf-8")
    # Every item the first sync stored is counted; the bug and the question are listed.
    assert "| GitHub | 2 | 0 | +2 |" in page and "| Stack Overflow | 1 | 0 | +1 |" in page
    for title in ("Notebook crashes on image upload", "Gemini API returns 429 on the free tier"):
        assert title in page
    # The first sync starts 90 days back ([github] since, [stackexchange] since).
    assert "Ancient" not in page
    assert "New items by source" in page and "first digest here" in page
    runs = [e for e in d.events if e["event"] == "job finished"]
    assert [e["job"] for e in runs[:4]] == ["sync", "analyze", "themes", "digest"]
    assert {e["outcome"] for e in runs[:4]} == {"ok"}


def test_without_network_the_daemon_names_each_unreachable_source_once_and_keeps_going(
    tmp_path: Path,
) -> None:
    cfg = _init(tmp_path)
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env = {
        "TRIAGE_GITHUB__API_URL": nowhere,
        "TRIAGE_STACKEXCHANGE__API_URL": nowhere + "/2.3",
        "TRIAGE_SCHEDULE__SYNC": "every 1s",
        **QUICK,
    }
    with Daemon(cfg, cwd=tmp_path, env=env) as d:
        first = d.event("job finished", job="sync", outcome="failed", timeout=60)
        d.event("catch-up cycle done; the jobs now follow [schedule]", timeout=60)
        again = d.wait_for(
            lambda e: (
                e.get("event") == "job finished"
                and e.get("job") == "sync"
                and e is not first
                and e.get("outcome") == "failed"
            ),
            timeout=30,
        )
        assert d.proc is not None and d.proc.poll() is None  # still running
        assert d.stop() == 0
    assert (
        f"github:{REPO}" in first["error"]
        and f"stackexchange:stackoverflow/{TAG}" in first["error"]
    )
    assert first["level"] == "error"
    assert again["error"] == "the same error as the previous run" and again["level"] == "info"
    digests = [e for e in d.events if e["event"] == "digest written"]
    assert digests, "the catch-up cycle went on to the digest"
