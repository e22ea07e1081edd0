"""State of the fake GitHub (compact records) and the JSON shapes GitHub renders them as."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from tests.fakes.server import Request

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
LABEL_WORDS = ("bug", "enhancement", "question", "documentation", "good first issue")
REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(slots=True)
class Issue:
    number: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    milestone: str | None = None
    comments: int = 0
    reactions: int = 0
    is_pr: bool = False
    # The older answer shape (recorded from GitHub): a plain issue carries a `pull_request` whose
    # URLs are null, and only `assignee`, no `assignees`.
    old_shape: bool = False


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    has_issues: bool = True
    issues: dict[int, Issue] = field(default_factory=dict)
    # (updated_at, number) ascending: the order `sort=updated&direction=asc` lists.
    order: list[tuple[datetime, int]] = field(default_factory=list)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def put(self, issue: Issue) -> None:
        self.issues[issue.number] = issue
        self.order.append((issue.updated_at, issue.number))
        if len(self.order) > 1 and self.order[-2] > self.order[-1]:
            self.order.sort()

    def ensure_label(self, name: str, color: str = "ededed", description: str | None = None) -> str:
        """The label's stored spelling, creating it if new (names match case-insensitively)."""
        for existing in self.labels:
            if existing.lower() == name.lower():
                return existing
        self.labels[name] = {
            "id": 5000 + len(self.labels),
            "name": name,
            "color": color,
            "description": description,
        }
        return name


def generate(repo: Repo, count: int, prs_every: int) -> None:
    """Issues created an hour apart from 2020, each updated 30 minutes after creation."""
    for n in range(1, count + 1):
        created = EPOCH + timedelta(hours=n)
        closed = n % 3 == 0
        repo.put(
            Issue(
                number=n,
                title=f"Issue {n}: {'crash' if n % 2 else 'feature'} in module {n % 17}",
                body=f"Steps to reproduce issue {n}.\n\n" + "Details of the problem. " * (n % 20),
                user=f"user{n % 50}",
                created_at=created,
                updated_at=created + timedelta(minutes=30),
                state="closed" if closed else "open",
                state_reason="completed" if closed else None,
                closed_at=created + timedelta(minutes=30) if closed else None,
                labels=[LABEL_WORDS[n % len(LABEL_WORDS)]] if n % 4 else [],
                assignees=[f"user{n % 7}"] if n % 5 == 0 else [],
                milestone="v1.0" if n % 11 == 0 else None,
                comments=n % 9,
                reactions=n % 4,
                is_pr=bool(prs_every) and n % prs_every == 0,
            )
        )


# -- JSON shapes (`api` is the base URL the request came in on, e.g. .../api/v3) -------------
def user_json(api: str, login: str, kind: str = "User") -> dict[str, Any]:
    return {
        "login": login,
        "id": zlib.crc32(login.encode()) % 10**7,
        "node_id": f"U_{login}",
        "avatar_url": "",
        "url": f"{api}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": kind,
        "site_admin": False,
    }


def label_json(api: str, repo: Repo, name: str) -> dict[str, Any]:
    label = repo.labels.get(name) or {"id": 0, "name": name, "color": "ededed"}
    return {
        "id": label["id"],
        "node_id": f"LA_{label['id']}",
        "url": f"{api}/repos/{repo.full_name}/labels/{quote(name)}",
        "name": name,
        "color": label["color"],
        "default": name in LABEL_WORDS,
        "description": label.get("description"),
    }


def milestone_json(api: str, repo: Repo, title: str | None) -> dict[str, Any] | None:
    if title is None:
        return None
    return {
        "url": f"{api}/repos/{repo.full_name}/milestones/1",
        "id": 1,
        "number": 1,
        "title": title,
        "state": "open",
    }


def issue_json(api: str, repo: Repo, issue: Issue) -> dict[str, Any]:
    url = f"{api}/repos/{repo.full_name}/issues/{issue.number}"
    html = f"https://github.com/{repo.full_name}/{'pull' if issue.is_pr else 'issues'}/"
    html += str(issue.number)
    assignees = [user_json(api, a) for a in issue.assignees]
    body: dict[str, Any] = {
        "url": url,
        "repository_url": f"{api}/repos/{repo.full_name}",
        "labels_url": url + "/labels{/name}",
        "comments_url": url + "/comments",
        "events_url": url + "/events",
        "html_url": html,
        "id": repo.id * 1_000_000 + issue.number,
        "node_id": f"I_{repo.id}_{issue.number}",
        "number": issue.number,
        "title": issue.title,
        "user": user_json(api, issue.user),
        "labels": [label_json(api, repo, n) for n in issue.labels],
        "state": issue.state,
        "locked": False,
        "assignee": assignees[0] if assignees else None,
        "assignees": assignees,
        "milestone": milestone_json(api, repo, issue.milestone),
        "comments": issue.comments,
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "closed_at": iso(issue.closed_at),
        "author_association": "NONE",
        "active_lock_reason": None,
        "body": issue.body,
        "reactions": {
            "url": url + "/reactions",
            "total_count": issue.reactions,
            **{k: 0 for k in REACTIONS},
            "+1": issue.reactions,
        },
        "timeline_url": url + "/timeline",
        "performed_via_github_app": None,
        "state_reason": issue.state_reason,
    }
    if issue.old_shape:
        body.pop("assignees")
        body["pull_request"] = {k: None for k in ("url", "html_url", "diff_url", "patch_url")}
    if issue.is_pr:
        body["draft"] = False
        body["pull_request"] = {
            "url": f"{api}/repos/{repo.full_name}/pulls/{issue.number}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "merged_at": None,
        }
    return body


def repo_json(api: str, repo: Repo, is_org: bool, updated: datetime) -> dict[str, Any]:
    return {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.name,
        "full_name": repo.full_name,
        "private": False,
        "owner": user_json(api, repo.owner, "Organization" if is_org else "User"),
        "html_url": f"https://github.com/{repo.full_name}",
        "description": None,
        "fork": False,
        "url": f"{api}/repos/{repo.full_name}",
        "has_issues": repo.has_issues,
        "archived": False,
        "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
        "default_branch": "main",
        "visibility": "public",
        "created_at": iso(EPOCH),
        "updated_at": iso(updated),
    }


# -- paging ----------------------------------------------------------------------------------
def paging(req: Request) -> tuple[int, int]:
    page = max(int(req.arg("page", "1") or 1), 1)
    per_page = min(max(int(req.arg("per_page", "30") or 30), 1), 100)
    return page, per_page


def link_header(base: str, req: Request, total: int) -> dict[str, str]:
    """Link header like GitHub's: first/prev/next/last, keeping every query argument."""
    page, per_page = paging(req)
    last = max((total + per_page - 1) // per_page, 1)
    args = {k: v[0] for k, v in req.query.items() if k != "page"}

    def url(n: int) -> str:
        return f"{base}?{urlencode({**args, 'page': n})}"

    rels = []
    if page < last:
        rels += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        rels += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
    return {"Link": ", ".join(rels)} if rels else {}
