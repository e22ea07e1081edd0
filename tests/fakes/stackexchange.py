"""A fake Stack Exchange API 2.3 (`/questions`, `/info`) on a real local HTTP server.

It keeps the real service's rules that clients trip over: answers come in a wrapper
(`items`, `has_more`, `quota_max`, `quota_remaining`, optional `backoff`); errors come as
`error_id`/`error_name`/`error_message` with HTTP 400 (throttling is error_id 502); the daily
quota is 300 per IP, 10,000 per key; a request that ignores `backoff` is refused; `page` above 25
needs a key; titles, names and bodies are HTML.

Standalone: `python -m tests.fakes.stackexchange --questions 5000 --port 0` prints the base URL.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import FakeServer, Request, Response
from tests.fakes.stackexchange_data import SITES, START, Question, sample_question

__all__ = ["START", "FakeStackExchange", "Question", "sample_question"]

VERSION = "2.3"
QUOTA_PER_IP, QUOTA_PER_KEY = 300, 10_000
MAX_PAGE_WITHOUT_KEY = 25
SORT_FIELDS = {"activity": "last_activity_date", "creation": "creation_date", "votes": "score"}
BAD_KEY = "`key` is not valid for passed access_token, token not found."


def _error(error_id: int, name: str, message: str, status: int = 400) -> Response:
    return Response(status, {"error_id": error_id, "error_name": name, "error_message": message})


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


class FakeStackExchange(FakeServer):
    """`with FakeStackExchange(questions=250) as se:`; point `api_url` at `se.base_url`."""

    def __init__(
        self, questions: int = 0, *, site: str = "stackoverflow", tag: str = "google-gemini"
    ) -> None:
        super().__init__()
        self.questions: dict[tuple[str, int], Question] = {}
        self.stamped: list[tuple[float, Request]] = []  # (monotonic time, request)
        self.backoff: float | None = None
        self.backoff_times: int | None = None  # how many answers carry it (None: all)
        self.backoff_violations = 0
        self.valid_keys: set[str] | None = None  # None: any key is accepted
        self.quota_used: dict[str, int] = {}
        self._next_allowed: dict[tuple[str, str], float] = {}
        self._state = threading.Lock()
        self._next_id = 90_000_000
        self._stalls: list[float] = []
        for i in range(questions):
            self.put(sample_question(i, site, tag))
        self.route("GET", rf"/{VERSION}/questions", self._questions)
        self.route("GET", rf"/{VERSION}/info", self._info)
        self.route("GET", rf"/{VERSION}/tags/(?P<tags>[^/]+)/info", self._tag_info)
        # Tags the site knows besides those on its questions (a new tag with no question yet).
        self.known_tags: set[str] = {tag}

    @property
    def base_url(self) -> str:
        return f"{super().base_url}/{VERSION}"

    def dispatch(self, req: Request) -> Response:
        with self._state:
            self.stamped.append((time.monotonic(), req))
        return super().dispatch(req)

    # -- scenario helpers ----------------------------------------------------------------
    def put(self, q: Question) -> Question:
        with self._state:
            self.questions[(q.site, q.question_id)] = q
        return q

    def add_question(
        self, title: str = "A question", body: str = "<p>Body</p>", tags: list[str] | None = None,
        *, created: int | None = None, activity: int | None = None, site: str = "stackoverflow",
        **fields: Any,
    ) -> Question:  # fmt: skip
        """Add a question; dates default to just after the latest activity on the site."""
        created = created if created is not None else self.now(site)
        self._next_id += 1
        q = Question(
            question_id=fields.pop("question_id", self._next_id),
            title=title,
            body=body,
            tags=tags or ["google-gemini"],
            creation_date=created,
            last_activity_date=activity if activity is not None else created,
            site=site,
            **fields,
        )
        return self.put(q)

    def edit_question(
        self,
        question_id: int,
        *,
        at: int | None = None,
        site: str = "stackoverflow",
        **changes: Any,
    ) -> Question:
        """Change fields (title, body, tags, score...) and bump the last activity date."""
        with self._state:
            q = self.questions[(site, question_id)]
        at = at if at is not None else self.now(site)
        for name, value in changes.items():
            setattr(q, name, value)
        if {"title", "body", "tags"} & set(changes):
            q.last_edit_date = at
        q.last_activity_date = at
        return q

    def answer_question(
        self, question_id: int, *, accepted: bool = False, at: int | None = None,
        site: str = "stackoverflow",
    ) -> Question:  # fmt: skip
        q = self.questions[(site, question_id)]
        self._next_id += 1
        return self.edit_question(
            question_id,
            at=at,
            site=site,
            answer_count=q.answer_count + 1,
            is_answered=True,
            accepted_answer_id=self._next_id if accepted else q.accepted_answer_id,
        )

    def now(self, site: str = "stackoverflow") -> int:
        """The fake's clock: a minute after the latest activity (so edits always move forward)."""
        with self._state:
            dates = [q.last_activity_date for (s, _), q in self.questions.items() if s == site]
        return max(dates, default=START) + 60

    def set_backoff(self, seconds: float | None, times: int | None = None) -> None:
        self.backoff, self.backoff_times = seconds, times

    def throttle(self, times: int = 1, seconds: int | None = None) -> None:
        """Answer the next `times` /questions calls with throttle_violation (error_id 502)."""
        message = (
            f"too many requests from this IP, more requests available in {seconds} seconds"
            if seconds is not None
            else "Violation of backoff parameter"
        )
        self.add_fault(_error(502, "throttle_violation", message), path="/questions", times=times)

    def fail(self, status: int = 503, times: int = 1, body: Any = None) -> None:
        """The next `times` /questions calls answer a server error (wrapper by default)."""
        if body is None:
            body = {"error_id": 503, "error_name": "temporarily_unavailable",
                    "error_message": "The service is temporarily unavailable"}  # fmt: skip
        self.add_fault(Response(status, body), path="/questions", times=times)

    def stall(self, seconds: float, times: int = 1) -> None:
        """Delay the next `times` /questions answers by `seconds`."""
        with self._state:
            self._stalls.extend([seconds] * times)

    def set_quota(self, remaining: int, key: str | None = None) -> None:
        """Leave `remaining` requests of today's quota for this key (or for the IP)."""
        holder = self._holder(key)
        with self._state:
            self.quota_used[holder] = self._quota_max(holder) - remaining

    def reset_quota(self) -> None:
        with self._state:
            self.quota_used.clear()

    def question_calls(self) -> list[Request]:
        return self.requests_to(r"/questions$")

    # -- API -----------------------------------------------------------------------------
    @staticmethod
    def _holder(key: str | None) -> str:
        return f"key:{key}" if key else "ip:127.0.0.1"

    @staticmethod
    def _quota_max(holder: str) -> int:
        return QUOTA_PER_KEY if holder.startswith("key:") else QUOTA_PER_IP

    def _admit(self, req: Request, method: str) -> tuple[str, Response | None]:
        """Quota, key and backoff checks every method shares; counts the request."""
        key = req.arg("key")
        holder = self._holder(key)
        if key is not None and self.valid_keys is not None and key not in self.valid_keys:
            return holder, _error(400, "bad_parameter", BAD_KEY)
        with self._state:
            if self.quota_used.get(holder, 0) >= self._quota_max(holder):
                wait = seconds_to_utc_midnight()
                return holder, _error(
                    502,
                    "throttle_violation",
                    f"too many requests from this IP, more requests available in {wait} seconds",
                )
            if time.monotonic() < self._next_allowed.get((holder, method), 0.0):
                self.backoff_violations += 1
                return holder, _error(502, "throttle_violation", "Violation of backoff parameter")
            site = req.arg("site")
            if not site:
                return holder, _error(400, "bad_parameter", "site is required")
            if site not in SITES:
                return holder, _error(400, "bad_parameter", f"No site found for name `{site}`")
            self.quota_used[holder] = self.quota_used.get(holder, 0) + 1
        return holder, None

    def _wrapper(
        self, holder: str, method: str, items: list[Any], has_more: bool
    ) -> dict[str, Any]:
        with self._state:
            out: dict[str, Any] = {
                "items": items,
                "has_more": has_more,
                "quota_max": self._quota_max(holder),
                "quota_remaining": self._quota_max(holder) - self.quota_used.get(holder, 0),
            }
            if self.backoff and (self.backoff_times is None or self.backoff_times > 0):
                out["backoff"] = self.backoff
                self._next_allowed[(holder, method)] = time.monotonic() + self.backoff
                if self.backoff_times is not None:
                    self.backoff_times -= 1
        return out

    def _questions(self, req: Request, _m: Any) -> Response:
        with self._state:
            stall = self._stalls.pop(0) if self._stalls else 0
        if stall:
            time.sleep(stall)  # slower than the client's timeout: it gives up and retries
        holder, refused = self._admit(req, "questions")
        if refused is not None:
            return refused
        try:
            page = int(req.arg("page", "1") or 1)
            pagesize = int(req.arg("pagesize", "30") or 30)
        except ValueError:
            return _error(400, "bad_parameter", "page and pagesize must be integers")
        if not 0 <= pagesize <= 100:
            return _error(400, "bad_parameter", "pagesize")
        if page < 1 or (page > MAX_PAGE_WITHOUT_KEY and not req.arg("key")):
            return _error(400, "bad_parameter", "page above 25 requires access token or app key")
        sort = req.arg("sort", "activity") or "activity"
        order = req.arg("order", "desc") or "desc"
        flt = req.arg("filter", "default") or "default"
        if sort not in SORT_FIELDS or order not in ("asc", "desc"):
            return _error(400, "bad_parameter", "sort" if sort not in SORT_FIELDS else "order")
        if flt not in ("default", "withbody") and not flt.startswith("!"):
            return _error(400, "bad_parameter", "filter")
        matched = self._select(req, SORT_FIELDS[sort], order == "desc")
        chunk = matched[(page - 1) * pagesize : page * pagesize]
        custom = flt.startswith("!")
        items = [q.to_json(body=flt != "default", custom=custom) for q in chunk]
        out = self._wrapper(holder, "questions", items, len(matched) > page * pagesize)
        if custom:  # the built-in filters leave these out of the wrapper
            out.update(page=page, page_size=pagesize, total=len(matched), type="question")
        return Response(200, out)

    def _select(self, req: Request, sort_field: str, desc: bool) -> list[Question]:
        site = req.arg("site")
        tags = [t for t in (req.arg("tagged") or "").split(";") if t]
        bounds = {name: req.arg(name) for name in ("min", "max", "fromdate", "todate")}
        low, high, start, end = (None if v is None else int(v) for v in bounds.values())
        with self._state:
            candidates = [q for (s, _), q in self.questions.items() if s == site]
        out = []
        for q in candidates:
            value = getattr(q, sort_field)
            if tags and not all(t in q.tags for t in tags):
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                continue
            if (start is not None and q.creation_date < start) or (
                end is not None and q.creation_date > end
            ):
                continue
            out.append(q)
        out.sort(key=lambda q: (getattr(q, sort_field), q.question_id), reverse=desc)
        return out

    def _info(self, req: Request, _m: Any) -> Response:
        holder, refused = self._admit(req, "info")
        if refused is not None:
            return refused
        site = req.arg("site")
        with self._state:
            qs = [q for (s, _), q in self.questions.items() if s == site]
        info = {
            "total_questions": len(qs),
            "total_unanswered": sum(1 for q in qs if not q.answer_count),
            "total_accepted": sum(1 for q in qs if q.accepted_answer_id),
            "total_answers": sum(q.answer_count for q in qs),
            "questions_per_minute": 0.0,
            "answers_per_minute": 0.0,
            "total_comments": sum(q.comment_count for q in qs),
            "total_votes": sum(abs(q.score) for q in qs),
            "total_badges": 0,
            "badges_per_minute": 0.0,
            "total_users": len({q.owner_id for q in qs}),
            "new_active_users": 0,
            "api_revision": "2025.1.1.1",
        }
        return Response(200, self._wrapper(holder, "info", [info], False))

    def _tag_info(self, req: Request, m: Any) -> Response:
        """`/tags/{tags}/info`: one entry per known tag of the `;`-separated list; unknown ones
        are simply absent (an unknown tag answers `items: []`, not an error)."""
        holder, refused = self._admit(req, "tags")
        if refused is not None:
            return refused
        site = req.arg("site")
        wanted = [unquote(t) for t in m.group("tags").split(";") if t]
        with self._state:
            used = [t for (s, _), q in self.questions.items() if s == site for t in q.tags]
        counts = {t: used.count(t) for t in set(used) | self.known_tags}
        items = [
            {
                "name": t,
                "count": counts[t],
                "has_synonyms": False,
                "is_moderator_only": False,
                "is_required": False,
            }
            for t in wanted
            if t in counts
        ]
        return Response(200, self._wrapper(holder, "tags", items, False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Stack Exchange API 2.3.")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--site", default="stackoverflow")
    parser.add_argument("--tag", default="google-gemini")
    parser.add_argument("--backoff", type=float, default=None, help="send this backoff always")
    args = parser.parse_args(argv)
    fake = FakeStackExchange(args.questions, site=args.site, tag=args.tag)
    fake.port = args.port
    fake.set_backoff(args.backoff)
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
