"""GitHub issues as a Source: one listing request per 100 items, oldest change first.

Items are built from the listing's own JSON. PyGithub's `Issue` objects would fetch each issue
again the moment `pull_request` or `raw_data` is read, so the listing is read through the
requester directly (see triage/clients/github.py).

A sync pass first asks for the newest changes with the ETag that pass stored last time: the
request is the same every time (no `since`, which moves with the cursor), so when nothing
changed GitHub answers 304 Not Modified, which costs no rate limit. The ETag is stored only
with the cursor of a pass that stored everything up to it.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from typing import Any

from github import GithubException

from triage.clients.github import GitHubClient, ListPage, error_message, next_link, probe
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
# The quiet check: the newest changes first, the same request whatever the cursor.
NEWEST_FIRST = {"state": "all", "sort": "updated", "direction": "desc"}


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
    """The issues of one repository, listed by `updated` ascending from the cursor.

    `conditional` (sync): each pass starts with the quiet check, a conditional request for the
    newest changes. A backfill lists from its cursor only, one request per 100 items.
    """

    def __init__(
        self,
        client: GitHubClient,
        repo: str,
        include_pull_requests: bool,
        conditional: bool = False,
    ) -> None:
        self.client = client
        self.repo = repo
        self.include_pull_requests = include_pull_requests
        self.conditional = conditional

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
            if self.conditional:
                yield from self._checked(cursor, start, state)
            else:
                yield from self._passes(start, 0)
        except GithubException as exc:
            raise repo_error(exc, self.repo) from None

    def _checked(
        self, cursor: str | None, start: str | None, state: dict[str, Any]
    ) -> Generator[Page, None, None]:
        """The quiet check, then (only when more changed than its one page holds) the listing."""
        head, key = self._newest(state)
        quota = head.quota_remaining
        if head.not_modified:
            # Nothing changed since the ETag was stored: the pass ends, cursor and state kept.
            yield Page([], cursor, head.requests, quota, dict(state), not_modified=True)
            return
        memo = {"etag": {"request": key, "value": head.etag}} if head.etag else {}
        changes = _changes_since(head, start)
        if changes is not None:
            page = self._page(changes, start, head.requests, quota)
            page.state = memo  # committed with this page's items and cursor
            yield page
            return
        if (yield from self._passes(start, head.requests)):
            # Every change up to the check is stored now: its ETag may go beside the cursor.
            yield Page([], None, requests=0, quota_remaining=quota, state=memo)

    def _newest(self, state: dict[str, Any]) -> tuple[ListPage, str]:
        """The newest changes, conditional on the ETag stored for this exact request."""
        path = f"/repos/{self.repo}/issues"
        params: dict[str, Any] = {**NEWEST_FIRST, "per_page": self.client.per_page}
        key = self.client.request_key(path, params)
        saved = state.get("etag")
        etag = (
            saved.get("value") if isinstance(saved, dict) and saved.get("request") == key else None
        )
        return self.client.get(path, params, f"the issues of {self.repo}", etag=etag), key

    def _passes(self, start: str | None, head_requests: int) -> Generator[Page, None, bool]:
        """List from `start`, again where issues moved meanwhile; True once a pass was clean."""
        for _ in range(MAX_RELISTS + 1):
            relist = yield from self._listing(start, head_requests)
            head_requests = 0
            if relist is None:
                return True
            log.info("issues moved during the listing; listing again", since=relist or "-")
            start = relist or None
        return False

    def _listing(self, start: str | None, extra: int = 0) -> Generator[Page, None, str | None]:
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
            requests, extra = listed.requests + extra, 0  # the check counts with page 1
            yield self._page(listed.data, start, requests, listed.quota_remaining)
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


def _changes_since(head: ListPage, start: str | None) -> list[dict[str, Any]] | None:
    """The changes from `start` on, oldest first, if the newest-first page holds them all.

    It does when it is the whole listing (no next page) or reaches back past `start`: `since`
    is inclusive, so an issue updated in the cursor's own second must be on the page too.
    """
    newer = [raw for raw in head.data if start is None or _cursor(raw["updated_at"]) >= start]
    if len(newer) == len(head.data) and next_link(head.headers) is not None:
        return None
    return sorted(newer, key=lambda raw: _cursor(raw["updated_at"]))


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


def expand_owner(
    client: GitHubClient, owner: str, saved: dict[str, Any] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Every repository of an organization, or of a user account, that has issues enabled.

    Each page is asked for with the ETag it had last time (`saved`, from the previous call's
    answer). A 304 carries no body and no Link header, so its repositories and its next page
    come from what was saved with that ETag. Returns the names and what to save for next time.
    """
    what = f"the repositories of {owner}"
    known = (saved or {}).get("pages") or {}
    candidates = [
        (f"/orgs/{owner}/repos", {"type": "all"}),
        (f"/users/{owner}/repos", {"type": "owner"}),
    ]
    # A user account answered last time: skip the organization's 404, which costs a request.
    candidates.sort(key=lambda c: not any(k.startswith(client.request_key(c[0])) for k in known))
    for path, params in candidates:
        try:
            first = {**params, "per_page": client.per_page}
            return _owner_pages(client, path, first, known, what)
        except GithubException as exc:
            if exc.status == 404:
                continue
            raise SourceError(f"GitHub refused {what}: {exc.status} {error_message(exc)}") from None
    raise SourceError(
        f"GitHub organization or user {owner!r} not found (404): check [github] repos"
    )


def _owner_pages(
    client: GitHubClient,
    url: str,
    params: dict[str, Any] | None,
    known: dict[str, Any],
    what: str,
) -> tuple[list[str], dict[str, Any]]:
    """Follow the listing's pages, each conditional on the ETag it had last time."""
    names: list[str] = []
    pages: dict[str, Any] = {}
    while True:
        key = client.request_key(url, params)
        before = known.get(key) if isinstance(known.get(key), dict) else None
        page = client.get(url, params, what, etag=before["etag"] if before else None)
        if page.not_modified and before is not None:
            found, nxt = list(before["repos"]), before.get("next")
        else:
            found = [r["full_name"] for r in page.data if r.get("has_issues", True)]
            nxt = next_link(page.headers)
        etag = page.etag or (before["etag"] if before else None)
        if etag:
            pages[key] = {"etag": etag, "repos": found, "next": nxt}
        names += found
        if nxt is None:
            return names, {"pages": pages}
        url, params = nxt, None


def make_sources(
    deps: SourceDeps, repos: list[str], conditional: bool = False
) -> list[GitHubSource]:
    """One source per repository; `org/*` expands to the org's (or user's) repositories.

    `conditional` (sync): sources start each pass with the quiet check (see GitHubSource).
    """
    client = deps.github
    names: list[str] = []
    for spec in repos:
        owner, name = _split(spec)
        if name != "*":
            names.append(f"{owner}/{name}")
            continue
        memo = f"repos:github:{owner.lower()}"
        saved = deps.listing_state(memo)
        found, listing = expand_owner(client, owner, saved)
        if listing != saved:
            deps.save_listing_state(memo, listing)
        names += found
    unique = list(dict.fromkeys(github_repo(n) for n in names))  # Octo/Demo is octo/demo
    include = deps.config.github.include_pull_requests
    return [GitHubSource(client, repo, include, conditional) for repo in unique]


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
