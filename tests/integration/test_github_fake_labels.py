"""The fake's label endpoints behave as GitHub's do for the real PyGithub client."""

from __future__ import annotations

import pytest
from github import Auth, Github, GithubException

from tests.fakes.github import FakeGitHub
from tests.integration.github_env import gh

__all__ = ["gh"]  # the fixture


def client(fake: FakeGitHub, token: str | None = "ghp_valid") -> Github:
    auth = Auth.Token(token) if token else None
    return Github(
        auth=auth,
        base_url=fake.base_url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def test_labels_can_be_listed_created_added_and_removed(gh: FakeGitHub) -> None:
    gh.add_repo("octo/hello")
    gh.add_issue("octo/hello", "Crash", labels=["bug"])
    repo = client(gh).get_repo("octo/hello")

    repo.create_label("needs triage (&*)", "ffff00", "waiting")
    with pytest.raises(GithubException) as dup:
        repo.create_label("Needs Triage (&*)", "ffff00")
    assert dup.value.status == 422

    issue = repo.get_issue(1)
    before = issue.updated_at
    issue.add_to_labels("needs triage (&*)", "question")
    assert [label.name for label in issue.get_labels()] == ["bug", "needs triage (&*)", "question"]
    issue.remove_from_labels("needs triage (&*)")
    assert [label.name for label in repo.get_issue(1).labels] == ["bug", "question"]
    assert repo.get_issue(1).updated_at > before  # label changes bump updated_at
    assert "needs triage (&*)" in [label.name for label in repo.get_labels()]

    with pytest.raises(GithubException) as missing:
        issue.remove_from_labels("not-there")
    assert missing.value.status == 404


def test_label_writes_can_be_refused(gh: FakeGitHub) -> None:
    gh.add_repo("octo/hello")
    gh.add_issue("octo/hello", "Crash")
    repo = client(gh).get_repo("octo/hello")
    issue = repo.get_issue(1)

    gh.fail(r"/issues/1/labels$", 403, "Resource not accessible by integration", method="POST")
    with pytest.raises(GithubException) as forbidden:
        issue.add_to_labels("bug")
    assert forbidden.value.status == 403
    assert gh.repo("octo/hello").issues[1].labels == []

    anonymous = client(gh, token=None).get_repo("octo/hello").get_issue(1)
    with pytest.raises(GithubException) as unauth:
        anonymous.add_to_labels("bug")
    assert unauth.value.status == 401
