"""A fake GitHub REST API on 127.0.0.1: issues listings, repos, labels, rate limits and faults.

Issues are held as compact records and rendered into GitHub's JSON shape per request, so the
fake serves tens of thousands of issues quickly. Every answer carries X-RateLimit-* headers.
Every 200 to a GET carries a weak ETag made from its body; a GET whose If-None-Match names it
is answered 304 Not Modified with no body, and costs no rate limit when it is authenticated
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
#use-conditional-requests-if-appropriate). `spent` and `not_modified` count what a run cost.

Standalone (for benchmarks and kill tests), serving N issues in any repository asked for:

    python -m tests.fakes.github --issues 20000 --prs-every 10 --port 0
"""

from __future__ import annotations

import argparse
import bisect
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.fakes.github_data import (
    EPOCH,
    LABEL_WORDS,
    Issue,
    Repo,
    generate,
    issue_json,
    label_json,
    link_header,
    paging,
    repo_json,
)
from tests.fakes.server import FakeServer, Request, Response, not_modified

PREFIX = re.compile(r"^/api/v3(?=/)")  # GitHub Enterprise serves the same API under /api/v3
R = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


class FakeGitHub(FakeServer):
    """`with FakeGitHub() as gh:`; point `[github] api_url` at `gh.base_url` (or `gh.ghe_url`)."""

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, Repo] = {}
        self.orgs: set[str] = set()
        self.revoked_tokens: set[str] = {"revoked"}
        self.require_auth = False
        self.limit = 5000
        self.used = 0
        # Since start, across resets: requests that counted against the limit, and 304 answers.
        self.spent = 0
        self.not_modified = 0
        self.reset_at = time.time() + 3600
        self.clock = EPOCH
        self.primary_status = 403  # GitHub answers a spent primary limit with 403 (or 429)
        # Standalone mode: unknown repositories spring into being with this many issues.
        self.autocreate: tuple[int, int] | None = None
        # Wall-clock arrival of each logged request, to check waits happened (never how long).
        self.arrivals: list[float] = []
        self._data_lock = threading.RLock()
        for method, pattern, handler in self._routes_table():
            self.route(method, pattern, handler)

    def _routes_table(self) -> list[tuple[str, str, Callable[[Request, re.Match[str]], Response]]]:
        return [
            ("GET", "/rate_limit", self._rate_limit),
            ("GET", R, self._get_repo),
            ("GET", R + "/issues", self._list_issues),
            ("GET", r"/repositories/(?P<id>\d+)/issues", self._list_issues),
            ("GET", R + r"/issues/(?P<n>\d+)", self._get_issue),
            ("GET", R + "/labels", self._list_repo_labels),
            ("POST", R + "/labels", self._create_label),
            ("GET", R + r"/issues/(?P<n>\d+)/labels", self._issue_labels),
            ("POST", R + r"/issues/(?P<n>\d+)/labels", self._add_labels),
            ("PUT", R + r"/issues/(?P<n>\d+)/labels", self._set_labels),
            ("DELETE", R + r"/issues/(?P<n>\d+)/labels/(?P<name>[^/]+)", self._remove_label),
            ("GET", r"/orgs/(?P<owner>[^/]+)/repos", self._owner_repos),
            ("GET", r"/users/(?P<owner>[^/]+)/repos", self._owner_repos),
        ]

    @property
    def ghe_url(self) -> str:
        """The same API as GitHub Enterprise serves it: under /api/v3."""
        return self.base_url + "/api/v3"

    # -- building state --------------------------------------------------------------------
    def add_repo(
        self, full_name: str, issues: int = 0, prs_every: int = 0, org: bool = False
    ) -> Repo:
        owner, name = full_name.split("/")
        with self._data_lock:
            repo = Repo(id=1000 + len(self.repos), owner=owner, name=name)
            self.repos[full_name.lower()] = repo
            if org:
                self.orgs.add(owner.lower())
            for label in LABEL_WORDS:
                repo.ensure_label(label)
            generate(repo, issues, prs_every)
            self.clock = max([self.clock, *(i.updated_at for i in repo.issues.values())])
        return repo

    def tick(self) -> datetime:
        """The fake's clock: every change happens one second after the newest one."""
        self.clock += timedelta(seconds=1)
        return self.clock

    def add_issue(self, full_name: str, title: str, body: str = "", **fields: Any) -> Issue:
        """A new issue (or PR with is_pr=True), updated now on the fake's clock."""
        with self._data_lock:
            repo = self.repo(full_name)
            now = self.tick()
            number = max(repo.issues, default=0) + 1
            issue = Issue(number, title, body, fields.pop("user", "reporter"), now, now, **fields)
            repo.put(issue)
        return issue

    def edit_issue(self, full_name: str, number: int, **changes: Any) -> Issue:
        """Change fields and bump updated_at, moving the issue to the end of the listing."""
        with self._data_lock:
            repo = self.repo(full_name)
            issue = repo.issues[number]
            for key, value in changes.items():
                setattr(issue, key, value)
            self._touch(repo, issue)
            if changes.get("state") == "closed" and "closed_at" not in changes:
                issue.closed_at = issue.updated_at
        return issue

    def _touch(self, repo: Repo, issue: Issue) -> None:
        key = (issue.updated_at, issue.number)
        index = bisect.bisect_left(repo.order, key)
        if index < len(repo.order) and repo.order[index] == key:
            del repo.order[index]
        issue.updated_at = self.tick()
        repo.order.append((issue.updated_at, issue.number))

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def _find_repo(self, m: re.Match[str]) -> Repo | None:
        groups = m.groupdict()
        with self._data_lock:
            if groups.get("id"):
                return next((r for r in self.repos.values() if r.id == int(groups["id"])), None)
            name = f"{groups['owner']}/{groups['repo']}"
            repo = self.repos.get(name.lower())
            if repo is None and self.autocreate is not None:
                repo = self.add_repo(name, *self.autocreate)
            return repo

    # -- fault switches --------------------------------------------------------------------
    def exhaust(self, reset_in: float = 3600.0, status: int = 403) -> None:
        """Use up the primary rate limit now; it resets `reset_in` seconds from now."""
        self.used = self.limit
        self.reset_at = time.time() + reset_in
        self.primary_status = status

    def secondary_limit(
        self, times: int = 1, retry_after: int | None = None, status: int = 403, path: str = ".*"
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"message": SECONDARY, "documentation_url": _DOCS + "#secondary-rate-limits"}
        self.add_fault(Response(status, body, headers), path=path, times=times)

    def server_error(self, times: int = 1, status: int = 502, path: str = ".*") -> None:
        body = "<html><body><h1>502 Bad Gateway</h1></body></html>" if status == 502 else None
        resp = Response(status, body or {"message": "Server Error"})
        if body:
            resp.content_type = "text/html"
        self.add_fault(resp, path=path, times=times)

    def fail(
        self, path: str, status: int, message: str, method: str | None = None, times: int = 1
    ) -> None:
        """Answer matching requests with an error, e.g. 403/404/422 on the label endpoints."""
        body: dict[str, Any] = {"message": message, "documentation_url": _DOCS}
        if status == 422:
            body["errors"] = [{"resource": "Label", "code": "already_exists", "field": "name"}]
        self.add_fault(Response(status, body), path=path, method=method, times=times)

    # -- dispatch: auth, rate limit, faults, routes -------------------------------------------
    def dispatch(self, req: Request) -> Response:
        with self._lock:
            self.requests.append(req)
            self.arrivals.append(time.time())
        held = self.wait_on_holds(req)
        try:
            resp, spent = self._answer(req)
            resp = self._conditional(req, resp, spent)
            resp.headers = {**self._rate_headers(req), **resp.headers}
            return resp
        finally:
            for hold in held:
                hold.served.set()

    def _answer(self, req: Request) -> tuple[Response, bool]:
        """The answer, and whether it counted against the primary rate limit."""
        token = _token(req)
        if token is not None and token in self.revoked_tokens:
            return Response(401, {"message": "Bad credentials", "documentation_url": _DOCS}), False
        if token is None and (self.require_auth or req.method != "GET"):
            body = {"message": "Requires authentication", "documentation_url": _DOCS}
            return Response(401, body), False
        fault = self._take_fault(req)
        if fault is not None:
            return fault, False
        path = PREFIX.sub("", req.path)
        counted = path != "/rate_limit"  # reading the rate limit is free, as on GitHub
        if counted and not self._spend():
            message = "API rate limit exceeded for user ID 1."
            body = {"message": message, "documentation_url": _DOCS}
            return Response(self.primary_status, body), False
        for method, pattern, handler in self._routes:
            m = pattern.match(path)
            if m and method == req.method:
                return handler(req, m), counted
        return self.not_found(req), counted

    def _spend(self) -> bool:
        with self._lock:
            if time.time() >= self.reset_at:
                self.used, self.reset_at = 0, time.time() + 3600
            if self.used >= self.limit:
                return False
            self.used += 1
            self.spent += 1
            return True

    def _conditional(self, req: Request, resp: Response, spent: bool) -> Response:
        """ETag every 200 to a GET, and answer 304 when If-None-Match names it."""
        answer = not_modified(req, resp)
        if answer is resp:
            return resp
        with self._lock:
            self.not_modified += 1
            if spent and _token(req) is not None:
                # An authorized 304 does not count against the primary limit; the spend
                # taken on arrival is given back, so the headers below already show it.
                self.used = max(self.used - 1, 0)
                self.spent -= 1
        return answer

    @property
    def requests_received(self) -> int:
        with self._lock:
            return len(self.requests)

    def _rate_headers(self, req: Request) -> dict[str, str]:
        with self._lock:
            return {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
                "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
                "X-RateLimit-Used": str(self.used),
                "X-RateLimit-Resource": "core",
            }

    # -- handlers --------------------------------------------------------------------------
    def _rate_limit(self, req: Request, m: re.Match[str]) -> Response:
        core = {
            "limit": self.limit,
            "used": self.used,
            "remaining": max(self.limit - self.used, 0),
            "reset": math.ceil(self.reset_at),
        }
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": int(time.time()) + 60}
        return Response(200, {"resources": {"core": core, "search": search}, "rate": core})

    def _get_repo(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._find_repo(m)
        return self.not_found(req) if repo is None else Response(200, self._repo_json(req, repo))

    def _list_issues(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._find_repo(m)
        if repo is None:
            return self.not_found(req)
        if not repo.has_issues:
            return Response(410, {"message": "Issues are disabled for this repo"})
        with self._data_lock:
            keys = self._select(repo, req)
            page, per_page = paging(req)
            chunk = keys[(page - 1) * per_page : page * per_page]
            body = [issue_json(self._api(req), repo, repo.issues[n]) for _, n in chunk]
        links = link_header(self._link_base(req, f"/repositories/{repo.id}/issues"), req, len(keys))
        return Response(200, body, links)

    def _select(self, repo: Repo, req: Request) -> list[tuple[datetime, int]]:
        """The listing's filters and order as GitHub defines them (default: open, created desc)."""
        state = req.arg("state", "open")
        since = req.arg("since")
        keys = repo.order
        if since:
            start = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            keys = keys[bisect.bisect_left(keys, (start, -1)) :]
        if state != "all":
            keys = [k for k in keys if repo.issues[k[1]].state == state]
        if req.arg("sort", "created") == "created":
            keys = sorted(keys, key=lambda k: (repo.issues[k[1]].created_at, k[1]))
        if req.arg("direction", "desc") == "desc":
            keys = keys[::-1]
        return keys

    def _get_issue(self, req: Request, m: re.Match[str]) -> Response:
        repo, issue = self._find_issue(m)
        if repo is None or issue is None:
            return self.not_found(req)
        return Response(200, issue_json(self._api(req), repo, issue))

    def _owner_repos(self, req: Request, m: re.Match[str]) -> Response:
        owner = m["owner"].lower()
        is_org = owner in self.orgs
        if req.path.split("/")[-3] == "orgs" and not is_org:
            return self.not_found(req)
        with self._data_lock:
            repos = [r for r in self.repos.values() if r.owner.lower() == owner]
        if not repos and not is_org:
            return self.not_found(req)
        page, per_page = paging(req)
        body = [self._repo_json(req, r) for r in repos[(page - 1) * per_page : page * per_page]]
        return Response(200, body, link_header(self._link_base(req), req, len(repos)))

    def _list_repo_labels(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._find_repo(m)
        if repo is None:
            return self.not_found(req)
        page, per_page = paging(req)
        labels = list(repo.labels.values())
        body = [label_json(self._api(req), repo, lb["name"]) for lb in labels][
            (page - 1) * per_page : page * per_page
        ]
        return Response(200, body, link_header(self._link_base(req), req, len(labels)))

    def _create_label(self, req: Request, m: re.Match[str]) -> Response:
        repo = self._find_repo(m)
        if repo is None:
            return self.not_found(req)
        data = req.json() or {}
        name = str(data.get("name") or "")
        if not name or name.lower() in {n.lower() for n in repo.labels}:
            body = {"message": "Validation Failed", "documentation_url": _DOCS}
            code = "already_exists" if name else "missing_field"
            body["errors"] = [{"resource": "Label", "code": code, "field": "name"}]
            return Response(422, body)
        with self._data_lock:
            repo.ensure_label(name, data.get("color", "ededed"), data.get("description"))
        return Response(201, label_json(self._api(req), repo, name))

    def _issue_labels(self, req: Request, m: re.Match[str]) -> Response:
        repo, issue = self._find_issue(m)
        if repo is None or issue is None:
            return self.not_found(req)
        return Response(200, [label_json(self._api(req), repo, n) for n in issue.labels])

    def _add_labels(self, req: Request, m: re.Match[str], replace: bool = False) -> Response:
        repo, issue = self._find_issue(m)
        if repo is None or issue is None:
            return self.not_found(req)
        data = req.json()
        names = data.get("labels", []) if isinstance(data, dict) else list(data or [])
        with self._data_lock:
            current = [] if replace else list(issue.labels)
            for name in names:
                name = repo.ensure_label(str(name))  # GitHub creates unknown labels
                if name not in current:
                    current.append(name)
            issue.labels = current
            self._touch(repo, issue)
        return Response(200, [label_json(self._api(req), repo, n) for n in issue.labels])

    def _set_labels(self, req: Request, m: re.Match[str]) -> Response:
        return self._add_labels(req, m, replace=True)

    def _remove_label(self, req: Request, m: re.Match[str]) -> Response:
        repo, issue = self._find_issue(m)
        if repo is None or issue is None:
            return self.not_found(req)
        name = unquote(m["name"])
        with self._data_lock:
            match = next((n for n in issue.labels if n.lower() == name.lower()), None)
            if match is None:
                return Response(
                    404, {"message": "Label does not exist", "documentation_url": _DOCS}
                )
            issue.labels.remove(match)
            self._touch(repo, issue)
        return Response(200, [label_json(self._api(req), repo, n) for n in issue.labels])

    def _find_issue(self, m: re.Match[str]) -> tuple[Repo | None, Issue | None]:
        repo = self._find_repo(m)
        return repo, (repo.issues.get(int(m["n"])) if repo else None)

    # -- JSON shapes -----------------------------------------------------------------------
    def _api(self, req: Request) -> str:
        prefix = PREFIX.match(req.path)
        return self.base_url + (prefix.group(0) if prefix else "")

    def _repo_json(self, req: Request, repo: Repo) -> dict[str, Any]:
        return repo_json(self._api(req), repo, repo.owner.lower() in self.orgs, self.clock)

    def _link_base(self, req: Request, path: str | None = None) -> str:
        """Where Link headers point: `path` under the API root, else the request's own path."""
        return self._api(req) + path if path else self.base_url + req.path


_DOCS = "https://docs.github.com/rest"


def _token(req: Request) -> str | None:
    value = req.headers.get("authorization")
    return value.split()[-1] if value else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issues", type=int, default=1000, help="issues per repository")
    parser.add_argument("--prs-every", type=int, default=0, help="every Nth item is a PR")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=int, default=5000, help="requests per hour")
    opts = parser.parse_args(argv)
    fake = FakeGitHub()
    fake.autocreate = (opts.issues, opts.prs_every)
    fake.limit = opts.rate_limit
    fake.port = opts.port
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
