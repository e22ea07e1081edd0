"""GitHub issues as a Source: one listing request per 100 items, oldest change first.

Items are built from the listing's own JSON. PyGithub's `Issue` objects would fetch each issue
again the moment `pull_request` or `raw_data` is read, so the listing is read through the
requester directly (see triage/clients/github.py).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from typing import Any

from github import GithubException

from triage.clients.github import GitHubClient, error_message, probe
from triage.errors import ConfigError, SourceError
from triage.logs import get_logger
from triage.sources.base import (
    CheckDeps,
    ItemIn,
    Page,
    SourceDeps,
    format_cursor,
    github_key,
    github_repo,
    to_utc,
)

log = get_logger("triage.github")
# Passes over the listing when issues keep moving during it (each pass is cheap when they do).
MAX_RELISTS = 3
REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _cursor(value: str) -> str:
    """GitHub's own timestamp in the cursor's one format (UTC, whole seconds)."""
    return format_cursor(to_utc(datetime.fromisoformat(value)))


def is_pull_request(raw: dict[str, Any]) -> bool:
    """Older answers carry `"pull_request": {"html_url": null, ...}` on plain issues too."""
    pull = raw.get("pull_request")
    return isinstance(pull, dict) and any(pull.get(k) for k in ("url", "html_url"))


def _assignees(raw: dict[str, Any]) -> list[str]:
    """`assignees`, or the older answers' single `assignee` when the list is absent."""
    people = raw.get("assignees")
    if people is None:
        people = [raw["assignee"]] if raw.get("assignee") else []
    return [a["login"] for a in people if a and a.get("login")]


def to_item(repo: str, raw: dict[str, Any]) -> ItemIn:
    """Map one issue of the listing onto ItemIn; what has no column goes to `extra`."""
    milestone = raw.get("milestone") or {}
    reactions = raw.get("reactions") or {}
    extra: dict[str, Any] = {
        "id": raw.get("id"),
        "author_association": raw.get("author_association"),
        "locked": raw.get("locked", False),
    }
    breakdown = {k: reactions[k] for k in REACTIONS if reactions.get(k)}
    if breakdown:
        extra["reactions"] = breakdown
    if (raw.get("type") or {}).get("name"):
        extra["type"] = raw["type"]["name"]
    pull = raw.get("pull_request") if is_pull_request(raw) else None
    if pull is not None:
        extra["draft"] = bool(raw.get("draft"))
        extra["merged_at"] = pull.get("merged_at")
    return ItemIn(
        key=github_key(repo, raw["number"]),
        source="github",
        scope=github_repo(repo),
        number=raw["number"],
        url=raw.get("html_url") or "",
        title=raw.get("title") or "",
        body=raw.get("body") or "",
        state="closed" if raw.get("state") == "closed" else "open",
        state_reason=raw.get("state_reason"),
        author=(raw.get("user") or {}).get("login"),
        labels=[label["name"] for label in raw.get("labels") or []],
        assignees=_assignees(raw),
        milestone=milestone.get("title"),
        is_pull_request=pull is not None,
        comments=raw.get("comments") or 0,
        reactions=reactions.get("total_count") or 0,
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
        closed_at=_time(raw.get("closed_at")),
        extra=extra,
    )


class GitHubSource:
    """The issues of one repository, listed by `updated` ascending from the cursor."""

    def __init__(self, client: GitHubClient, repo: str, include_pull_requests: bool) -> None:
        self.client = client
        self.repo = repo
        self.include_pull_requests = include_pull_requests

    @property
    def name(self) -> str:
        return f"github:{self.repo}"

    def total_hint(self) -> int | None:
        # The repository's counts cover open issues and PRs only; a guess would mislead.
        return None

    def pages(
        self, cursor: str | None, since: datetime | None, state: dict[str, Any]
    ) -> Iterator[Page]:
        start = cursor or (format_cursor(since) if since else None)
        try:
            for _ in range(MAX_RELISTS + 1):
                relist = yield from self._listing(start)
                if relist is None:
                    return
                log.info("issues moved during the listing; listing again", since=relist or "-")
                start = relist or None
        except GithubException as exc:
            raise repo_error(exc, self.repo) from None

    def _listing(self, start: str | None) -> Generator[Page, None, str | None]:
        """One pass over the listing; returns where to list again if issues moved meanwhile.

        GitHub pages by offset. An issue updated mid-listing jumps to the end, and if it had
        already been listed, everything behind it shifts back by one and one issue slips
        across a page boundary unseen. Such an issue shows up twice in one pass, so a repeat
        means: list again from the page it was first seen on.
        """
        params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "asc"}
        if start:
            # `since` is inclusive: the last item of the previous run comes back once more
            # (a harmless re-upsert) and items sharing its second are never skipped.
            params["since"] = start
        what = f"the issues of {self.repo}"
        first_page = array("I")  # issue number -> 1 + index of the page it was listed on
        page_starts: list[str] = []  # the cursor in force before each page ("" = none)
        relist: str | None = None
        for index, listed in enumerate(
            self.client.paginate(f"/repos/{self.repo}/issues", params, what)
        ):
            page_starts.append(start or "")
            for raw in listed.data:
                number = raw["number"]
                if number >= len(first_page):
                    first_page.extend([0] * (number + 1 - len(first_page)))
                if first_page[number]:
                    again = page_starts[first_page[number] - 1]
                    relist = again if relist is None else min(relist, again)
                else:
                    first_page[number] = index + 1
            yield self._page(listed.data, start, listed.requests, listed.quota_remaining)
            if listed.data:
                start = _cursor(listed.data[-1]["updated_at"])
        return relist

    def _page(
        self, data: list[dict[str, Any]], start: str | None, requests: int, quota: int | None
    ) -> Page:
        items, skipped = [], 0
        for raw in data:
            if is_pull_request(raw) and not self.include_pull_requests:
                skipped += 1
                continue
            try:
                items.append(to_item(self.repo, raw))
            except (KeyError, TypeError, ValueError) as exc:  # one odd issue never blocks a page
                log.warning(
                    "issue not stored; skipped",
                    repo=self.repo,
                    number=raw.get("number"),
                    reason=f"{type(exc).__name__}: {str(exc)[:120]}",
                )
                skipped += 1
        cursor = _cursor(data[-1]["updated_at"]) if data else start
        return Page(items, cursor, requests=requests, quota_remaining=quota, skipped=skipped)


def repo_error(exc: GithubException, repo: str) -> SourceError:
    if exc.status == 404:
        return SourceError(
            f"GitHub repository {repo} not found (404): check the name in [github] repos"
            " or the command line, and that GITHUB_TOKEN can see it"
        )
    if exc.status == 410:
        return SourceError(f"GitHub repository {repo} has issues disabled (410)")
    return SourceError(f"GitHub refused the issues of {repo}: {exc.status} {error_message(exc)}")


# GitHub's own rules for owner and repository names; anything else would go into the API path
# unescaped (`acme/app?x=`, `acme/app#1`) and come back as an answer we would retry.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _split(spec: str) -> tuple[str, str]:
    owner, _, name = spec.strip().partition("/")
    if not _NAME.fullmatch(owner) or not (name == "*" or _NAME.fullmatch(name)):
        raise ConfigError(
            f"expected OWNER/REPO or OWNER/* (letters, digits, '.', '-', '_'), got {spec!r}"
        )
    return owner, name


def expand_owner(client: GitHubClient, owner: str) -> list[str]:
    """Every repository of an organization, or of a user account, that has issues enabled."""
    what = f"the repositories of {owner}"
    for path, params in (
        (f"/orgs/{owner}/repos", {"type": "all"}),
        (f"/users/{owner}/repos", {"type": "owner"}),
    ):
        names: list[str] = []
        try:
            for page in client.paginate(path, params, what):
                names += [r["full_name"] for r in page.data if r.get("has_issues", True)]
        except GithubException as exc:
            if exc.status == 404:
                continue
            raise SourceError(f"GitHub refused {what}: {exc.status} {error_message(exc)}") from None
        return names
    raise SourceError(
        f"GitHub organization or user {owner!r} not found (404): check [github] repos"
    )


def make_sources(deps: SourceDeps, repos: list[str]) -> list[GitHubSource]:
    """One source per repository; `org/*` expands to the org's (or user's) repositories."""
    client = deps.github
    names: list[str] = []
    for spec in repos:
        owner, name = _split(spec)
        names += expand_owner(client, owner) if name == "*" else [f"{owner}/{name}"]
    unique = list(dict.fromkeys(github_repo(n) for n in names))  # Octo/Demo is octo/demo
    include = deps.config.github.include_pull_requests
    return [GitHubSource(client, repo, include) for repo in unique]


def doctor_check(deps: CheckDeps) -> str:
    """API reachable, token accepted, primary rate limit left: one free GET /rate_limit."""
    cfg, token = deps.config.github, deps.secrets.github_token
    if not cfg.repos and token is None:
        return "not configured ([github] repos is empty)"
    client = probe(cfg, token.get_secret_value() if token else None)
    try:
        core = client.rate_limit()
    except GithubException as exc:
        if exc.status == 404:  # GitHub Enterprise with rate limiting switched off
            return f"{cfg.api_url} reachable, rate limiting not enabled on this server"
        raise SourceError(f"{cfg.api_url} answered {exc.status} {error_message(exc)}") from None
    auth = "token accepted" if token else "no GITHUB_TOKEN (unauthenticated: low hourly limit)"
    reset = datetime.fromtimestamp(int(core.get("reset", 0)), UTC)
    return (
        f"{cfg.api_url} reachable, {auth}, rate limit {core.get('remaining')}/{core.get('limit')}"
        f" left (resets {reset:%H:%M} UTC)"
    )
