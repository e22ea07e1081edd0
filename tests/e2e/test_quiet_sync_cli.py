"""`triage sync` with nothing new, as a user runs it: one free 304 per repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from triage.db import migrate
from triage.db.engine import make_engine

from .cli import run_triage


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def test_a_second_sync_with_nothing_new_spends_no_rate_limit(
    gh: FakeGitHub, tmp_path: Path
) -> None:
    for n in range(3):
        gh.add_repo(f"acme/repo{n}", issues=40, org=True)
    env = {
        "TRIAGE_DATABASE__URL": f"sqlite:///{tmp_path / 'triage.db'}",
        "TRIAGE_GITHUB__API_URL": gh.base_url,
        "TRIAGE_GITHUB__REPOS": '["acme/*"]',
        "GITHUB_TOKEN": "ghp_valid",
        "COLUMNS": "200",
    }
    engine = make_engine(env["TRIAGE_DATABASE__URL"])
    migrate.upgrade(engine)
    engine.dispose()
    first = run_triage("sync", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("40 new") == 3
    status = run_triage("status", "--json", cwd=tmp_path, env=env)
    before = json.loads(status.stdout)["cursors"]
    spent, received = gh.spent, gh.requests_received

    again = run_triage("sync", cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stderr
    assert again.stdout.count("nothing changed (304 Not Modified)") == 3
    assert "0 items (0 new, 0 updated, 0 unchanged, 0 skipped) in 1 requests" in again.stdout
    # Three repositories and one page of them: four requests, none counted against the limit.
    assert gh.requests_received - received == 4 and gh.spent == spent
    after = json.loads(run_triage("status", "--json", cwd=tmp_path, env=env).stdout)["cursors"]
    assert [(c["name"], c["value"]) for c in after] == [(c["name"], c["value"]) for c in before]
    assert json.loads(status.stdout)["items"] == {"github": 120}
